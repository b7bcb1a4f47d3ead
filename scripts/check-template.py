#!/usr/bin/env python3
"""Checks a packaged CloudFormation template for what a real account depends on and moto does
not check: usage `check-template.py TEMPLATE [CORS_ORIGIN ...]`.

- CORS: with no origins given, the HTTP API has no CORS configuration; with origins, API
  Gateway answers preflights (CorsConfiguration with exactly those origins, OPTIONS among the
  methods, x-api-key and content-type among the headers).
- Subscriptions: the stream function answers through a Function URL in RESPONSE_STREAM mode
  (buffered, events would arrive all at once at the end), with the handler `stream`, a timeout
  above a subscription's 14 minutes, reserved concurrency, and the same CORS origins.
- Images through CloudFront: the distribution (under the HasCdn condition) is HTTPS only and
  GET/HEAD only, reads the bucket through an origin access control, the bucket policy lets it
  read objects but not staged uploads, scan-only uploads or scan debug data, and the functions
  are given its URL (PAWQL_CDN_URL).
- Alarms: every alarm notifies a topic, the ones the README promises exist, and no topic is
  encrypted with the aws/sns key (CloudWatch cannot publish to it).
"""
import json
import sys

EXPECTED_ALARMS = [
    "ScanDeadLettersAlarm",
    "Api5xxRateAlarm",
    "ApiErrorsAlarm",
    "ApiThrottlesAlarm",
    "ScanErrorsAlarm",
    "ScanThrottlesAlarm",
    "ScansFailedAlarm",
    "ScansGaveUpAlarm",
]

template_path, origins = sys.argv[1], sys.argv[2:]
resources = json.load(open(template_path))["Resources"]
failures = []

apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
if len(apis) != 1:
    failures.append(f"expected one HTTP API, found {len(apis)}")
else:
    cors = apis[0]["Properties"].get("CorsConfiguration")
    if not origins and cors is not None:
        failures.append(f"CORS configured without corsOrigins: {cors}")
    if origins:
        if cors is None:
            failures.append("corsOrigins set, but the HTTP API has no CorsConfiguration: preflights would get 404")
        else:
            if sorted(cors.get("AllowOrigins", [])) != sorted(origins):
                failures.append(f"AllowOrigins {cors.get('AllowOrigins')} != {origins}")
            if "OPTIONS" not in cors.get("AllowMethods", []):
                failures.append("OPTIONS not allowed")
            headers = [h.lower() for h in cors.get("AllowHeaders", [])]
            for needed in ("x-api-key", "content-type"):
                if needed not in headers:
                    failures.append(f"{needed} not an allowed header")

urls = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Url"]
stream = resources.get("StreamLambdaFunction", {}).get("Properties", {})
if len(urls) != 1:
    failures.append(f"expected one Function URL (the stream function's), found {len(urls)}")
else:
    url = urls[0]["Properties"]
    if url.get("InvokeMode") != "RESPONSE_STREAM":
        failures.append(f"the stream URL's InvokeMode is {url.get('InvokeMode')}, not RESPONSE_STREAM")
    if "StreamLambdaFunction" not in json.dumps(url.get("TargetFunctionArn")):
        failures.append("the Function URL does not target the stream function")
    # The HTTP API's own origin (the viewer opens its streams there), then corsOrigins.
    allowed = (url.get("Cors") or {}).get("AllowOrigins", [])
    if not allowed or "HttpApi" not in json.dumps(allowed[0]):
        failures.append(f"the stream URL does not allow the HTTP API's origin: {allowed}")
    elif sorted(allowed[1:]) != sorted(origins):
        failures.append(f"the stream URL's other origins {allowed[1:]} != {origins}")
api_env = resources.get("ApiLambdaFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
if "StreamLambdaFunctionUrl" not in json.dumps(api_env.get("PAWQL_STREAM_URL")):
    failures.append("the API function is not told the stream URL (PAWQL_STREAM_URL)")
if stream.get("Environment", {}).get("Variables", {}).get("PAWQL_HANDLER") != "stream":
    failures.append("the stream function does not run PAWQL_HANDLER=stream")
if int(stream.get("Timeout", 0)) <= 14 * 60:
    failures.append(f"the stream function's timeout {stream.get('Timeout')} s does not outlast a subscription (14 min)")
if "ReservedConcurrentExecutions" not in stream:
    failures.append("the stream function has no reserved concurrency: nothing caps open streams")

cdn = resources.get("ImageCdn")
if cdn is None or cdn.get("Condition") != "HasCdn":
    failures.append("no CloudFront distribution ImageCdn under the HasCdn condition")
else:
    config = cdn["Properties"]["DistributionConfig"]
    behaviour = config["DefaultCacheBehavior"]
    if behaviour.get("ViewerProtocolPolicy") != "https-only":
        failures.append(f"the CDN is not HTTPS only: {behaviour.get('ViewerProtocolPolicy')}")
    if sorted(behaviour.get("AllowedMethods", [])) != ["GET", "HEAD"]:
        failures.append(f"the CDN allows {behaviour.get('AllowedMethods')}")
    if "ImageCdnAccess" not in json.dumps(config["Origins"]):
        failures.append("the CDN does not read through the origin access control")
policy = json.dumps(resources.get("ImageBucketTlsOnly", {}))
for needed in ("CdnReadsImages", "CdnReadsNothingElse", "/staging/*", "/scan-uploads/*", "/scan-debug/*", "cloudfront.amazonaws.com"):
    if needed not in policy:
        failures.append(f"the bucket policy lacks {needed}")
functions_env = json.dumps(resources.get("ApiLambdaFunction", {}).get("Properties", {}).get("Environment", {}))
if "PAWQL_CDN_URL" not in functions_env or "ImageCdn" not in functions_env:
    failures.append("the API is not given the CDN's URL (PAWQL_CDN_URL)")

alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
for name, alarm in alarms.items():
    actions = alarm["Properties"].get("AlarmActions", [])
    if not actions:
        failures.append(f"alarm {name} notifies nobody")
# CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key (its key
# policy has no statement for cloudwatch.amazonaws.com): alarms would fire into nothing.
for name, topic in resources.items():
    if topic["Type"] == "AWS::SNS::Topic" and "aws/sns" in str(topic["Properties"].get("KmsMasterKeyId", "")):
        failures.append(f"topic {name} uses the aws/sns key: CloudWatch alarms cannot publish to it")
for wanted in EXPECTED_ALARMS:
    if wanted not in alarms:
        failures.append(f"alarm {wanted} missing")

if failures:
    print("template check failed:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"template checks: clean ({'CORS for ' + ', '.join(origins) if origins else 'no CORS'}, streaming URL, CDN, {len(alarms)} alarms)")
