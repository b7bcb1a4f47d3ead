// CORS of the stream function's URL. Browsers reach it from another origin: the viewer, served
// by the HTTP API, opens its subscriptions there, so the HTTP API's own origin is always allowed
// (a CloudFormation expression, resolved at deploy), plus the stage's `corsOrigins` (as for the
// HTTP API, deploy/cors.js). Lambda answers a Function URL's preflights itself; its list of
// methods takes no OPTIONS.
const { origins } = require("./cors.js");

module.exports = async ({ resolveVariable }) => {
  const httpApiOrigin = {
    "Fn::Join": ["", ["https://", { Ref: "HttpApi" }, ".execute-api.", { Ref: "AWS::Region" }, ".", { Ref: "AWS::URLSuffix" }]],
  };
  // CloudFormation's own shape (AWS::Lambda::Url Cors), merged by resources.extensions.
  return {
    AllowOrigins: [httpApiOrigin, ...(await origins(resolveVariable))],
    AllowHeaders: ["content-type", "x-api-key", "accept"],
    AllowMethods: ["POST"],
    MaxAge: 3600,
  };
};
