#!/usr/bin/env python3
"""Checks a packaged CloudFormation template for what a real account depends on and moto does
not check: usage `check-template.py TEMPLATE [--stream-concurrency N] [CORS_ORIGIN ...]`,
where N is the `streamConcurrency` parameter the template was packaged with (none: unset).

- CORS: with no origins given, the HTTP API has no CORS configuration; with origins, API
  Gateway answers preflights (CorsConfiguration with exactly those origins, OPTIONS among the
  methods, x-api-key and content-type among the headers).
- Subscriptions: the stream function answers through a Function URL in RESPONSE_STREAM mode
  (buffered, events would arrive all at once at the end), with the handler `stream`, a timeout
  above a subscription's 14 minutes, and the same CORS origins.
- Function URLs with AuthType NONE: the function's resource policy allows both
  `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` with `InvokedViaFunctionUrl` (since
  October 2025 a new URL needs both, or every request answers 403), each exactly once.
- Concurrency: no function reserves any unless asked; the stream function reserves exactly N
  when packaged with `streamConcurrency=N` (a reservation needs 100 unreserved executions left
  in the account, which a new account's quota may not have).
- Stateful resources (the S3 bucket and the DynamoDB tables) are kept when the stack is
  deleted or replaces them, but removed when the operation that created them fails
  (`DeletionPolicy: RetainExceptOnCreate`), so a failed first deploy can be retried; no resource
  keeps a plain `Retain` (only Serverless's Lambda versions do).
- IAM: every function has a role of its own, trusted by Lambda alone, with inline policies only,
  no wildcard action, and its own log group; `rekognition:DetectLabels`, the scan table's stream
  and the dead-letter queue are granted to the scan function's role and to no other. A role's
  inline policies stay under half of IAM's 10,240-character quota as packaged (before the
  intrinsics resolve; a resolved ARN is about twice as long as the expression it replaces).
- Images through CloudFront: the distribution (under the HasCdn condition) is HTTPS only and
  GET/HEAD only, reads the bucket through an origin access control, the bucket policy lets it
  read objects but not staged uploads, scan-only uploads or scan debug data, and the functions
  are given its URL (PAWQL_CDN_URL).
- Alarms: every alarm notifies a topic, the ones docs/deploying.md promises exist, every
  function has an errors and a throttles alarm, the stream function's concurrency alarm fires
  at 80% of its cap (N when set), and no topic is encrypted with the aws/sns key (CloudWatch
  cannot publish to it).
- AWS limits (docs/aws-rules.md; each message names its row): every function's timeout is at
  most 900 s (L5), its name fits 64 characters for any stage of up to MAX_STAGE_LENGTH (51)
  characters (L10), and its environment variables take at most 4 KB with intrinsics estimated
  high (L11). HTTP API integrations wait at most 30 s, and the API function times out before
  that (A1). Every HTTP API stage throttles its routes, at most at the account's default
  10,000 rps and burst 5,000 (A3). Alarms on AWS/ApiGateway use HTTP API metric names and
  dimensions (A5). No bucket has a fixed BucketName (S6). The image bucket's lifecycle rules
  count whole days >= 1, and staged uploads, scan-only uploads and scan debug data expire (S4).
  The scan table's stream has one consumer (D11), whose retries and record age are bounded,
  which bisects, honours batchItemFailures and dead-letters to an SQS queue (D12). The scan
  table's TTL is on expiresAtEpoch (D10). Every role may read the stage's parameters and
  decrypt them, kms:Decrypt only via SSM (P3).
"""
import argparse
import json
import re
import sys

EXPECTED_ALARMS = [
    "ScanDeadLettersAlarm",
    "Api5xxRateAlarm",
    "ApiErrorsAlarm",
    "ApiThrottlesAlarm",
    "StreamErrorsAlarm",
    "StreamThrottlesAlarm",
    "StreamConcurrencyAlarm",
    "ScanErrorsAlarm",
    "ScanThrottlesAlarm",
    "ScansFailedAlarm",
    "ScansGaveUpAlarm",
]
# What only the scan handler calls or is fed by: Rekognition, the scan table's stream (read by
# the event source mapping with the function's role) and the dead-letter queue it writes to.
SCAN_ONLY_ACTIONS = ["rekognition:DetectLabels", "dynamodb:GetRecords", "sqs:SendMessage"]
# Stateful resources: kept on deletion and replacement, removed when their create fails.
STATEFUL_TYPES = ["AWS::S3::Bucket", "AWS::DynamoDB::Table"]
# Serverless's own artifact bucket holds nothing that outlives the stack.
NOT_STATEFUL = ["ServerlessDeploymentBucket"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("template")
parser.add_argument("origins", nargs="*", metavar="CORS_ORIGIN")
parser.add_argument("--stream-concurrency", type=int, default=None, metavar="N")
args = parser.parse_args()
template_path, origins = args.template, args.origins
resources = json.load(open(template_path))["Resources"]
failures = []


def target(reference):
    """The logical id a function reference (GetAtt ... Arn, Ref, or a name) points at."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            return reference["Fn::GetAtt"][0]
        if "Ref" in reference:
            return reference["Ref"]
    return reference


def listed(value):
    return value if isinstance(value, list) else [value]


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

# A public Function URL needs two statements in the function's resource policy: a request is
# refused (403) unless both lambda:InvokeFunctionUrl and lambda:InvokeFunction allow it.
permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
for name, resource in resources.items():
    if resource["Type"] != "AWS::Lambda::Url" or resource["Properties"].get("AuthType") != "NONE":
        continue
    function = target(resource["Properties"].get("TargetFunctionArn"))
    mine = [p for p in permissions if target(p.get("FunctionName")) == function and p.get("Principal") == "*"]
    url_grants = [
        p for p in mine if p.get("Action") == "lambda:InvokeFunctionUrl" and p.get("FunctionUrlAuthType") == "NONE"
    ]
    invoke_grants = [
        p for p in mine if p.get("Action") == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is True
    ]
    if len(url_grants) != 1:
        failures.append(f"{name}: {len(url_grants)} lambda:InvokeFunctionUrl permissions for {function}, not 1")
    if len(invoke_grants) != 1:
        failures.append(
            f"{name}: {len(invoke_grants)} lambda:InvokeFunction permissions (InvokedViaFunctionUrl) for "
            f"{function}, not 1: every request to the URL would answer 403"
        )
    unscoped = [p for p in mine if p.get("Action") == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is not True]
    if unscoped:
        failures.append(f"{name}: {function} may be invoked by anyone, not only through its URL")

functions = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
for name, function in functions.items():
    reserved = function.get("ReservedConcurrentExecutions")
    wanted = args.stream_concurrency if name == "StreamLambdaFunction" else None
    if reserved != wanted:
        failures.append(
            f"{name} reserves {reserved} concurrent executions, not {wanted}"
            + (" (streamConcurrency)" if name == "StreamLambdaFunction" else "")
        )

for name, resource in resources.items():
    policies = (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
    if resource["Type"] in STATEFUL_TYPES and name not in NOT_STATEFUL:
        if policies != ("RetainExceptOnCreate", "Retain"):
            failures.append(
                f"{name}: DeletionPolicy/UpdateReplacePolicy {policies}, not (RetainExceptOnCreate, Retain): "
                "kept when the stack goes, removed when its creation fails"
            )
    elif resource.get("DeletionPolicy") == "Retain" and resource["Type"] != "AWS::Lambda::Version":
        failures.append(f"{name} ({resource['Type']}) is retained even when its creation fails")

roles = {name: target(function.get("Role")) for name, function in functions.items()}
for role in set(roles.values()):
    sharing = sorted(name for name, of in roles.items() if of == role)
    if len(sharing) > 1:
        failures.append(f"{', '.join(sharing)} share the role {role}: each function gets its own")
scan_functions = [
    name for name, f in functions.items() if f.get("Environment", {}).get("Variables", {}).get("PAWQL_HANDLER") == "scan-stream"
]
if len(scan_functions) != 1:
    failures.append(f"expected one scan function (PAWQL_HANDLER=scan-stream), found {scan_functions}")
for name, role_name in roles.items():
    role = resources.get(role_name, {})
    if role.get("Type") != "AWS::IAM::Role":
        failures.append(f"{name}'s role {role_name} is not a role of this template")
        continue
    properties = role["Properties"]
    trust = properties.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    principals = [p for s in trust for p in listed(s.get("Principal", {}).get("Service", []))]
    if principals != ["lambda.amazonaws.com"]:
        failures.append(f"{role_name} is trusted by {principals}, not by Lambda alone")
    if properties.get("ManagedPolicyArns"):
        failures.append(f"{role_name} has managed policies: {properties['ManagedPolicyArns']}")
    statements = [s for p in properties.get("Policies", []) for s in listed(p["PolicyDocument"]["Statement"])]
    actions = {a for s in statements if s.get("Effect") == "Allow" for a in listed(s.get("Action", []))}
    for action in sorted(actions):
        if "*" in action:
            failures.append(f"{role_name} grants the wildcard action {action}")
    for action in SCAN_ONLY_ACTIONS:
        if name in scan_functions and action not in actions:
            failures.append(f"{role_name} (the scan function's) lacks {action}")
        if name not in scan_functions and action in actions:
            failures.append(f"{role_name} ({name}'s) grants {action}, which only the scan function needs")
    size = sum(len(json.dumps(p["PolicyDocument"], separators=(",", ":"))) for p in properties.get("Policies", []))
    if size > 10240 // 2:
        failures.append(f"{role_name}'s inline policies take {size} characters: too near IAM's 10,240 once resolved")
    # Serverless names a function's log group after it: ApiLambdaFunction, ApiLogGroup.
    log_group = name.replace("LambdaFunction", "LogGroup")
    logs = [s for s in statements if "logs:PutLogEvents" in listed(s.get("Action", []))]
    if not any(log_group in json.dumps(s.get("Resource")) for s in logs):
        failures.append(f"{role_name} grants no logs:PutLogEvents on {log_group}, {name}'s own log group")

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


def alarm_metrics(alarm):
    """(namespace, metric name, dimensions) of each metric an alarm watches."""
    properties = alarm["Properties"]
    stats = [properties] + [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
    return [(s["Namespace"], s["MetricName"], s.get("Dimensions", [])) for s in stats if "Namespace" in s]


def lambda_metrics(alarm):
    """(metric name, function logical id) of each AWS/Lambda metric an alarm watches."""
    return [
        (metric, target(dimension["Value"]))
        for namespace, metric, dimensions in alarm_metrics(alarm)
        if namespace == "AWS/Lambda"
        for dimension in dimensions
        if dimension["Name"] == "FunctionName"
    ]


watched = {pair for alarm in alarms.values() for pair in lambda_metrics(alarm)}
for name in functions:
    for metric in ("Errors", "Throttles"):
        if (metric, name) not in watched:
            failures.append(f"no alarm on {name}'s {metric}")
concurrency = alarms.get("StreamConcurrencyAlarm", {}).get("Properties")
if concurrency is not None:
    if ("ConcurrentExecutions", "StreamLambdaFunction") not in lambda_metrics(alarms["StreamConcurrencyAlarm"]):
        failures.append("StreamConcurrencyAlarm does not watch the stream function's ConcurrentExecutions")
    expressions = [m["Expression"] for m in concurrency.get("Metrics", []) if m.get("ReturnData") and "Expression" in m]
    cap = re.fullmatch(r"100 \* \w+ / (\d+)", expressions[0]) if len(expressions) == 1 else None
    if cap is None or int(cap.group(1)) <= 0:
        failures.append(f"StreamConcurrencyAlarm's expression {expressions} is not `100 * streams / <cap>`")
    elif args.stream_concurrency is not None and int(cap.group(1)) != args.stream_concurrency:
        failures.append(f"StreamConcurrencyAlarm counts {cap.group(1)} as the cap, not streamConcurrency {args.stream_concurrency}")
    if (concurrency.get("Threshold"), concurrency.get("ComparisonOperator")) != (80, "GreaterThanOrEqualToThreshold"):
        failures.append("StreamConcurrencyAlarm does not fire at 80% of the cap")

# AWS rules the template can show (docs/aws-rules.md; each message names its row).
MAX_TIMEOUT = 900  # L5: a Lambda function's timeout, seconds
# L10: function names have at most 64 characters. The longest is pawql-{stage}-stream, 13
# characters besides the stage, so a stage may have at most 51; serverless.yml does not check it.
FUNCTION_NAME_LIMIT = 64
MAX_STAGE_LENGTH = 51
ENVIRONMENT_LIMIT = 4096  # L11: all of a function's environment variables, keys and values
# L11: what an intrinsic in an environment variable may resolve to, at most (conservative).
ATTRIBUTE_LENGTHS = {"FunctionUrl": 100, "DomainName": 100, "Arn": 256}
PSEUDO_LENGTHS = {"AWS::Region": 14, "AWS::AccountId": 12, "AWS::URLSuffix": 16, "AWS::Partition": 10}
UNKNOWN_LENGTH = 256  # a Ref, another attribute, a ${} in Fn::Sub
UNREADABLE_LENGTH = 1024  # an intrinsic this check does not read
# A3: API Gateway's default account throttle (rps, burst); stage and route throttles sit below.
ACCOUNT_RATE, ACCOUNT_BURST = 10_000, 5_000
HTTP_API_TIMEOUT_MS = 30_000  # A1: an HTTP API integration's maximum, not raisable
# A5: what an HTTP API publishes (REST's 5XXError, 4XXError, ApiName are not among them).
HTTP_API_METRICS = {"4xx", "5xx", "Count", "Latency", "IntegrationLatency", "DataProcessed"}
HTTP_API_DIMENSIONS = {"ApiId", "Stage", "Route"}
# S4: the prefixes whose objects expire (staged uploads, scan-only uploads, scan debug data).
EXPIRING_PREFIXES = ["staging/", "scan-uploads/", "scan-debug/"]
# D12: a stream mapping's bounds; D11: a stream keeps records 24 hours.
MAX_RETRY_ATTEMPTS = 10_000
RECORD_AGE_RANGE = (60, 24 * 3600)
SCAN_TTL_ATTRIBUTE = "expiresAtEpoch"  # what src/adapters/aws/dynamo_scan_store.rs writes


def number(value):
    """A literal number (CloudFormation also takes numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    return None


def whole_days(value):
    """A positive whole number of days, else None (S3 takes nothing else)."""
    days = number(value)
    return days if isinstance(days, int) and days >= 1 else None


def resolved_length(value):
    """The most characters a template value can resolve to (intrinsics estimated high)."""
    if isinstance(value, bool):
        return len(str(value).lower())
    if isinstance(value, (int, float)):
        return len(str(value))
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            return PSEUDO_LENGTHS.get(argument, UNKNOWN_LENGTH)
        if function == "Fn::GetAtt":
            attribute = argument[1] if isinstance(argument, list) else str(argument).split(".", 1)[-1]
            return ATTRIBUTE_LENGTHS.get(attribute, UNKNOWN_LENGTH)
        if function == "Fn::Join" and isinstance(argument, list) and isinstance(argument[1], list):
            parts = argument[1]
            return sum(map(resolved_length, parts)) + len(argument[0]) * max(len(parts) - 1, 0)
        if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            return max(resolved_length(argument[1]), resolved_length(argument[2]))
        if function == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return len(re.sub(r"\$\{[^}]*\}", "", text)) + UNKNOWN_LENGTH * len(re.findall(r"\$\{[^}]*\}", text))
    return UNREADABLE_LENGTH


def check_function_limits():
    """L5 (timeout), L10 (name length at the longest stage), L11 (environment size). Returns the
    longest stage every function name fits, and the largest environment's estimated size."""
    stage_room, sizes = [], [0]
    for name, function in functions.items():
        timeout = number(function.get("Timeout", 3))
        if timeout is None or not 1 <= timeout <= MAX_TIMEOUT:
            failures.append(
                f"{name}'s Timeout {function.get('Timeout')} s is not within Lambda's 1-{MAX_TIMEOUT} s "
                "(function timeout, aws-rules L5)"
            )
        variables = function.get("Environment", {}).get("Variables", {})
        stage = variables.get("PAWQL_STAGE")
        function_name = function.get("FunctionName")
        if not isinstance(stage, str) or not stage:
            failures.append(f"{name} has no literal PAWQL_STAGE: its name cannot be sized for other stages (aws-rules L10)")
        elif len(stage) > MAX_STAGE_LENGTH:
            failures.append(
                f"{name}: the stage {stage} has {len(stage)} characters, over the {MAX_STAGE_LENGTH} whose function "
                f"names fit Lambda's {FUNCTION_NAME_LIMIT} (aws-rules L10)"
            )
        elif function_name is not None:
            if not isinstance(function_name, str):
                failures.append(f"{name}'s FunctionName {function_name} is not literal: its length cannot be checked (aws-rules L10)")
            else:
                carries = len(re.findall(rf"(?<![A-Za-z0-9]){re.escape(stage)}(?![A-Za-z0-9])", function_name))
                fixed = len(function_name) - carries * len(stage)
                longest = fixed + carries * MAX_STAGE_LENGTH
                if carries:
                    stage_room.append((FUNCTION_NAME_LIMIT - fixed) // carries)
                if longest > FUNCTION_NAME_LIMIT:
                    failures.append(
                        f"{name}'s name {function_name} takes {longest} characters for a {MAX_STAGE_LENGTH}-character "
                        f"stage: over Lambda's {FUNCTION_NAME_LIMIT} (function names, aws-rules L10)"
                    )
        size = sum(len(key.encode("utf-8")) + resolved_length(value) for key, value in variables.items())
        sizes.append(size)
        if size > ENVIRONMENT_LIMIT:
            failures.append(
                f"{name}'s environment variables may take {size} bytes: over Lambda's 4 KB for all of them "
                "(aws-rules L11)"
            )
    return min(stage_room, default=None), max(sizes)


def check_http_api():
    """A1 (integration timeout), A3 (stage throttles below the account's), A5 (metric names)."""
    for name, resource in resources.items():
        if resource["Type"] != "AWS::ApiGatewayV2::Integration":
            continue
        properties = resource["Properties"]
        limit = number(properties.get("TimeoutInMillis", HTTP_API_TIMEOUT_MS))
        if limit is None or limit > HTTP_API_TIMEOUT_MS:
            failures.append(
                f"{name}'s TimeoutInMillis {properties.get('TimeoutInMillis')} is over the HTTP API's "
                f"{HTTP_API_TIMEOUT_MS} (integration timeout, aws-rules A1)"
            )
            limit = HTTP_API_TIMEOUT_MS
        function = functions.get(target(properties.get("IntegrationUri")))
        if function is not None:
            timeout = number(function.get("Timeout", 3))
            if timeout is None or timeout * 1000 >= limit:
                failures.append(
                    f"{name}: {target(properties.get('IntegrationUri'))}'s timeout {function.get('Timeout')} s is not "
                    f"below the integration's {limit / 1000:g} s: API Gateway answers 503 first (aws-rules A1)"
                )
    stages = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Stage"}
    if not stages:
        failures.append("the HTTP API has no stage to throttle (aws-rules A3)")
    for name, stage in stages.items():
        settings = [("DefaultRouteSettings", stage.get("DefaultRouteSettings"))]
        settings += [(f"RouteSettings {route}", s) for route, s in (stage.get("RouteSettings") or {}).items()]
        for where, setting in settings:
            setting = setting or {}
            for key, ceiling in (("ThrottlingRateLimit", ACCOUNT_RATE), ("ThrottlingBurstLimit", ACCOUNT_BURST)):
                if key not in setting and where != "DefaultRouteSettings":
                    continue
                value = number(setting.get(key))
                if value is None or not 0 < value <= ceiling:
                    failures.append(
                        f"{name} {where} {key} is {setting.get(key, 'unset')}: it must be set, above 0 and at most "
                        f"the account's default {ceiling:,} (API Gateway throttling, aws-rules A3)"
                    )
    stage_names = {s.get("StageName") for s in stages.values()}
    apis = {name for name, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Api"}
    for alarm_name, alarm in alarms.items():
        for namespace, metric, dimensions in alarm_metrics(alarm):
            if namespace != "AWS/ApiGateway":
                continue
            names = {d["Name"]: d["Value"] for d in dimensions}
            if metric not in HTTP_API_METRICS:
                failures.append(
                    f"alarm {alarm_name} watches AWS/ApiGateway {metric}, which an HTTP API does not publish "
                    f"(it has {', '.join(sorted(HTTP_API_METRICS))}; aws-rules A5)"
                )
            if not set(names) <= HTTP_API_DIMENSIONS or target(names.get("ApiId")) not in apis:
                failures.append(
                    f"alarm {alarm_name}'s {metric} dimensions {sorted(names)} are not ApiId (this HTTP API) "
                    "with Stage or Route (aws-rules A5)"
                )
            elif "Stage" in names and names["Stage"] not in stage_names:
                failures.append(f"alarm {alarm_name}'s {metric} is on Stage {names['Stage']}, not one of {sorted(stage_names)} (aws-rules A5)")


def check_buckets():
    """S6 (no fixed bucket names), S4 (lifecycle expirations in whole days, the prefixes pawql relies on)."""
    for name, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket" and "BucketName" in resource["Properties"]:
            failures.append(
                f"{name} has BucketName {resource['Properties']['BucketName']}: bucket names are global across "
                "accounts, let CloudFormation pick a unique one (aws-rules S6)"
            )
    bucket = resources.get("ImageBucket", {}).get("Properties", {})
    rules = [r for r in bucket.get("LifecycleConfiguration", {}).get("Rules", []) if r.get("Status") == "Enabled"]
    for rule in rules:
        for key, value in (
            ("ExpirationInDays", rule.get("ExpirationInDays")),
            ("AbortIncompleteMultipartUpload.DaysAfterInitiation", (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")),
            ("NoncurrentVersionExpiration.NoncurrentDays", (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")),
        ):
            if value is not None and whole_days(value) is None:
                failures.append(
                    f"ImageBucket lifecycle rule {rule.get('Id')}: {key} {value} is not a whole number of days >= 1 "
                    "(S3 lifecycle expiration, aws-rules S4)"
                )
    for prefix in EXPIRING_PREFIXES:
        expiring = [
            r for r in rules
            if prefix in (r.get("Prefix"), (r.get("Filter") or {}).get("Prefix")) and "ExpirationInDays" in r
        ]
        if not expiring:
            failures.append(f"ImageBucket has no enabled lifecycle rule expiring {prefix} (aws-rules S4)")
    if not any("AbortIncompleteMultipartUpload" in r for r in rules):
        failures.append("ImageBucket has no enabled lifecycle rule aborting incomplete multipart uploads (aws-rules S4)")


def check_scan_stream():
    """D11 (one consumer of the scan table's stream), D12 (bounded retries, bisecting, partial
    batch responses, an SQS on-failure destination), D10 (the scan table's TTL attribute)."""
    mappings = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    consumers = {}
    for name, mapping in mappings.items():
        source = mapping.get("EventSourceArn")
        if isinstance(source, dict) and source.get("Fn::GetAtt", [None, None])[1] == "StreamArn":
            consumers.setdefault(source["Fn::GetAtt"][0], []).append(name)
    readers = consumers.get("ScanTable", [])
    if len(readers) != 1:
        failures.append(
            f"the scan table's stream has {len(readers)} consumers {readers}, not 1: no more than two "
            "processes should read a shard (aws-rules D11)"
        )
    for table, names in consumers.items():
        if len(names) > 1 and table != "ScanTable":
            failures.append(f"{table}'s stream has {len(names)} consumers {names} (aws-rules D11)")
    for name in (n for names in consumers.values() for n in names):
        mapping = mappings[name]
        retries = number(mapping.get("MaximumRetryAttempts", -1))
        if retries is None or not 0 <= retries <= MAX_RETRY_ATTEMPTS:
            failures.append(
                f"{name}: MaximumRetryAttempts {mapping.get('MaximumRetryAttempts', 'unset (unlimited)')} is not within "
                f"0-{MAX_RETRY_ATTEMPTS:,}: a failing record would be retried until it expires (aws-rules D12)"
            )
        age = number(mapping.get("MaximumRecordAgeInSeconds", -1))
        if age is None or not RECORD_AGE_RANGE[0] <= age <= RECORD_AGE_RANGE[1]:
            failures.append(
                f"{name}: MaximumRecordAgeInSeconds {mapping.get('MaximumRecordAgeInSeconds', 'unset (unlimited)')} is not within "
                f"{RECORD_AGE_RANGE[0]}-{RECORD_AGE_RANGE[1]:,}: the stream keeps records 24 hours (aws-rules D11, D12)"
            )
        if mapping.get("BisectBatchOnFunctionError") is not True:
            failures.append(f"{name} does not bisect a failing batch (BisectBatchOnFunctionError, aws-rules D12)")
        if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
            failures.append(f"{name} ignores the handler's batchItemFailures (ReportBatchItemFailures, aws-rules D12)")
        destination = target(mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
        if resources.get(destination, {}).get("Type") != "AWS::SQS::Queue":
            failures.append(f"{name} sends discarded records to {destination}, not to an SQS queue of this stack (aws-rules D12)")
    ttl = resources.get("ScanTable", {}).get("Properties", {}).get("TimeToLiveSpecification") or {}
    if (ttl.get("AttributeName"), ttl.get("Enabled")) != (SCAN_TTL_ATTRIBUTE, True):
        failures.append(f"ScanTable's TTL is {ttl or None}, not enabled on {SCAN_TTL_ATTRIBUTE} (aws-rules D10)")


def check_parameter_reads():
    """P3: every function's role may read the stage's parameters and decrypt its SecureStrings,
    kms:Decrypt only through SSM."""
    for name, role_name in roles.items():
        properties = resources.get(role_name, {}).get("Properties", {})
        statements = [s for p in properties.get("Policies", []) for s in listed(p["PolicyDocument"]["Statement"])]
        allowed = [s for s in statements if s.get("Effect") == "Allow"]
        reads = [s for s in allowed if "ssm:GetParametersByPath" in listed(s.get("Action", []))]
        if not any(":parameter/pawql/" in json.dumps(s.get("Resource")) for s in reads):
            failures.append(f"{role_name} ({name}'s) cannot read the stage's parameters (ssm:GetParametersByPath, aws-rules P3)")
        decrypts = [s for s in allowed if "kms:Decrypt" in listed(s.get("Action", []))]
        via_ssm = [
            s for s in decrypts
            if "ssm." in json.dumps(s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService"))
        ]
        if not decrypts:
            failures.append(
                f"{role_name} ({name}'s) has no kms:Decrypt: the SecureString keys cannot be read "
                "decrypted (aws-rules P3)"
            )
        elif len(via_ssm) != len(decrypts):
            failures.append(f"{role_name} ({name}'s) may use kms:Decrypt outside SSM (aws-rules P3)")


stage_room, largest_environment = check_function_limits()
check_http_api()
check_buckets()
check_scan_stream()
check_parameter_reads()

if failures:
    print("template check failed:\n  " + "\n  ".join(failures))
    sys.exit(1)
reserved = f"stream reserves {args.stream_concurrency}" if args.stream_concurrency is not None else "no reserved concurrency"
print(
    f"template checks: clean ({'CORS for ' + ', '.join(origins) if origins else 'no CORS'}, streaming URL with both "
    f"permissions, {reserved}, {len(roles)} roles, CDN, {len(alarms)} alarms; function names fit stages of up to "
    f"{stage_room} characters ({MAX_STAGE_LENGTH} promised), environments of at most "
    f"{largest_environment} of {ENVIRONMENT_LIMIT} bytes)"
)
