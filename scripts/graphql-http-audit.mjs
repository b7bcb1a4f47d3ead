// The GraphQL-over-HTTP conformance audit (npm `graphql-http`, the spec's reference suite)
// against a running pawql: `node scripts/graphql-http-audit.mjs http://127.0.0.1:8080/graphql`.
// Prints one JSON summary line ({ok, warn, error, results}) and exits 1 if any audit errors.
// tests/api/conformance.rs runs it against a test server as part of the test command.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node scripts/graphql-http-audit.mjs <graphql endpoint url>');
  process.exit(2);
}
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null });
}
const count = (status) => results.filter((r) => r.status === status).length;
const summary = { ok: count('ok'), warn: count('warn'), error: count('error'), results };
console.log(JSON.stringify(summary));
process.exit(summary.error > 0 ? 1 : 0);
