// CORS of the stream function's URL, from the same `corsOrigins` parameter as the HTTP API's
// (deploy/cors.js). Lambda answers a Function URL's preflights itself; its list of methods takes
// no OPTIONS. With no origins: none, so only same-origin pages can open a stream.
const { origins } = require("./cors.js");

module.exports = async ({ resolveVariable }) => {
  const allowed = await origins(resolveVariable);
  if (allowed.length === 0) return false;
  return {
    allowedOrigins: allowed,
    allowedHeaders: ["content-type", "x-api-key", "accept"],
    allowedMethods: ["POST"],
    maxAge: 3600,
  };
};
