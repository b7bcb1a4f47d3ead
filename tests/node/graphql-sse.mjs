// Follows one operation over Server-Sent Events with the npm `graphql-sse` client (a client
// nobody here wrote), in its distinct connections mode, and prints every result it receives
// as one JSON line, then {"complete":true} (or {"error":...}).
// Usage: node tests/node/graphql-sse.mjs <url of /graphql/stream> <query> <variables JSON> [api key]
import { createClient } from 'graphql-sse';

const [url, query, variables, key] = process.argv.slice(2);
const client = createClient({
  url,
  singleConnection: false,
  headers: key ? { 'x-api-key': key } : {},
  retryAttempts: 0,
});
await new Promise((resolve) => {
  client.subscribe(
    { query, variables: JSON.parse(variables) },
    {
      next: (result) => console.log(JSON.stringify(result)),
      error: (error) => {
        console.log(JSON.stringify({ error: String(error?.message ?? error) }));
        resolve();
      },
      complete: () => {
        console.log(JSON.stringify({ complete: true }));
        resolve();
      },
    },
  );
});
client.dispose();
