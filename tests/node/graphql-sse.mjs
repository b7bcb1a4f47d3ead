// Follows one operation over Server-Sent Events with the npm `graphql-sse` client (a client
// nobody here wrote), in its distinct connections mode, and prints one JSON line: every
// result it received, and how the operation ended ({"results":[…],"complete":true}, or
// "error" instead of "complete").
// Usage: node tests/node/graphql-sse.mjs <url of /graphql/stream> <query> <variables JSON> [api key]
import { createClient } from 'graphql-sse';

const [url, query, variables, key] = process.argv.slice(2);
const client = createClient({
  url,
  singleConnection: false,
  headers: key ? { 'x-api-key': key } : {},
  retryAttempts: 0,
});
const seen = { results: [] };
await new Promise((resolve) => {
  client.subscribe(
    { query, variables: JSON.parse(variables) },
    {
      next: (result) => seen.results.push(result),
      error: (error) => {
        seen.error = String(error?.message ?? error);
        resolve();
      },
      complete: () => {
        seen.complete = true;
        resolve();
      },
    },
  );
});
client.dispose();
console.log(JSON.stringify(seen));
