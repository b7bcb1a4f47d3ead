// API Gateway's CORS for the HTTP API, from the stage's `corsOrigins` parameter (comma-separated,
// as PAWQL_CORS_ORIGINS takes it). With origins set, API Gateway itself answers browsers'
// preflight OPTIONS requests (the HTTP API has no OPTIONS routes, and without this a preflight
// gets API Gateway's 404 before the function is ever called) and adds the CORS headers.
// With none: no CORS configuration, so only same-origin pages can call the API.
// The stage's origins, for this file and for stream-cors.js.
async function origins(resolveVariable) {
  const list = String((await resolveVariable("param:corsOrigins")) || "");
  return list
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
}

module.exports = async ({ resolveVariable }) => {
  const allowed = await origins(resolveVariable);
  if (allowed.length === 0) return false;
  return {
    allowedOrigins: allowed,
    allowedHeaders: ["content-type", "x-api-key", "accept"],
    allowedMethods: ["GET", "POST", "OPTIONS"],
    maxAge: 3600,
  };
};

module.exports.origins = origins;
