// API Gateway's CORS for the HTTP API, from the stage's `corsOrigins` parameter (comma-separated,
// as PAWQL_CORS_ORIGINS takes it). With origins set, API Gateway itself answers browsers'
// preflight OPTIONS requests (the HTTP API has no OPTIONS routes, and without this a preflight
// gets API Gateway's 404 before the function is ever called) and adds the CORS headers.
// With none: no CORS configuration, so only same-origin pages can call the API.
module.exports = async ({ resolveVariable }) => {
  const list = String((await resolveVariable("param:corsOrigins")) || "");
  const origins = list
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins,
    allowedHeaders: ["content-type", "x-api-key", "accept"],
    allowedMethods: ["GET", "POST", "OPTIONS"],
    maxAge: 3600,
  };
};
