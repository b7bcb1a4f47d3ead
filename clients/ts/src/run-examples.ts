// Runs the client examples against a real server and prints what each saw as one JSON line:
//   npx tsx clients/ts/src/run-examples.ts <graphql endpoint> <photo> <photo> <photo> [api key]
// (one photo per run, so each scan is followed from its start).
// (tests/api/ts_clients.rs starts the server and checks the output.)
import { readFile } from "node:fs/promises";
import WebSocket from "ws";
import { apolloClient, uploadPickAndScan } from "./apollo";
import { showOneCat, uploadAndScan } from "./example";

const [endpoint, wsPhoto, ssePhoto, sdkPhoto, apiKey] = process.argv.slice(2);
const blob = async (path: string) => new Blob([await readFile(path)]);
const seen: Record<string, unknown> = {};
for (const [subscriptions, photo] of [["ws", wsPhoto], ["sse", ssePhoto]] as const) {
  const client = apolloClient({ endpoint, apiKey, subscriptions, webSocketImpl: WebSocket });
  seen[`apollo-${subscriptions}`] = await uploadPickAndScan(client, await blob(photo));
  client.stop();
}
seen.sdk = { oneCat: await showOneCat(endpoint, apiKey), isCat: await uploadAndScan(endpoint, await blob(sdkPhoto), apiKey) };
console.log(JSON.stringify(seen));
process.exit(0);
