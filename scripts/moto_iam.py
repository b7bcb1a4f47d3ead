"""IAM as a real account would enforce it, in front of moto (which enforces none).

moto-server.py asks `refusal(environ, body)` about every request before moto sees it. A
request signed with an access key id of the form `role:<functions>:<stage>` (`<functions>` one
or more of api, stream, scan joined by `+`, e.g. `role:api+scan:t123x4`) is authorised as the
roles of those functions in serverless.yml would authorise it on AWS, on that stage's tables,
bucket and parameters. What they do not allow is refused as AWS refuses it
(`AccessDeniedException`, or S3's 403 `AccessDenied`), so a new call without a grant, or a call
on another stage's resources, fails the test that makes it instead of a deployment. Any other
key id (`testing`, which the harness provisions and inspects with) is not checked.

Being in the server, this sees every client of every process the tests start (the pawql
binary, the Lambda handlers, a presigned URL used as a browser would), which the SDK
interceptor it replaces (tests/api/iam.rs) could not: that saw only clients built in the test
process, and only the base names of tables, so not which stage a call touched.

The rules modelled are the ones pawql's calls touch: DynamoDB transactions and batches are
authorised per item action and table (`TransactWriteItems` needs `PutItem`, `UpdateItem`,
`DeleteItem` or `ConditionCheckItem` on each table it writes; `TransactGetItems` needs
`GetItem`), a `Query` or `Scan` of an index needs the index's ARN, listing a bucket needs
`s3:ListBucket` on it, `HeadObject` needs `s3:GetObject`, a copy needs `s3:GetObject` on its
source, and Rekognition reading an S3 object needs the caller's `s3:GetObject` on it. Not
modelled: Conditions (the one there, kms:ViaService, is taken as met), Deny statements and the
bucket policy (its only deny is of plain HTTP, which is all moto speaks), and DynamoDB Streams
calls (the event source mapping makes them on AWS, never pawql; they are refused here).

Both sides of a check are in one resource form, the ARN without its `arn:aws:<service>:…:`
prefix, with the stage's names filled in: `table/<name>`, `table/<name>/index/<index>`,
`table/<name>/stream/<label>`, `bucket/<bucket>`, `bucket/<bucket>/<key>`, `parameter/<name>`,
`key/<id>`, `queue/<logical id>`, `loggroup/<logical id>`, or `*`. A request whose resource
cannot be worked out needs it on `?`, which no grant names.

`python scripts/moto_iam.py --self-test` checks all this on the template as it is.
"""

import contextlib
import functools
import io
import json
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections import namedtuple
from pathlib import Path
from urllib.parse import unquote
from xml.sax.saxutils import escape

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "serverless.yml"
FUNCTIONS = ("api", "stream", "scan")
STAGE = "${sls:stage}"
ROLE_PREFIX = "role:"
# Stages are names in ARNs; anything else (a `*` above all) would widen the role's patterns.
STAGE_NAME = re.compile(r"[A-Za-z0-9-]+")
# What a resource that cannot be worked out is named: no grant's pattern matches it.
UNKNOWN = "?"

Need = namedtuple("Need", "action resource")


class Role(namedtuple("Role", "functions stage")):
    """The functions whose roles a caller acts with, together, on one stage."""

    @property
    def name(self):
        return "+".join(self.functions)

    def allows(self, need):
        return any(statement_allows(statement, need)
                   for function in self.functions
                   for statement in grants(function, self.stage))


class MalformedRole(ValueError):
    pass


# --- The roles, as serverless.yml writes them ---------------------------------------------

def as_list(value):
    return value if isinstance(value, list) else [value]


def read_roles(path=TEMPLATE):
    """Each function's Allow statements, as (action patterns, resource templates): templates
    still hold `${sls:stage}`, filled in per caller by `grants`."""
    # safe_load resolves the anchors and aliases (*ServingPolicy, ...). The template uses only
    # long-form intrinsics (Fn::GetAtt:, Fn::Join:); a short-form `!GetAtt` would make
    # safe_load fail here, at start-up, rather than be misread.
    template = yaml.safe_load(path.read_text())
    resources = template["resources"]["Resources"]
    roles = {}
    for function in FUNCTIONS:
        role = template["functions"][function].get("role")
        if not isinstance(role, str) or role not in resources:
            raise SystemExit(f"{path}: the {function} function names no role of its own")
        statements = []
        for policy in resources[role]["Properties"]["Policies"]:
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                if statement.get("Effect") != "Allow":
                    continue
                actions = as_list(statement["Action"])
                templates = [resource_template(r, resources) for r in as_list(statement["Resource"])]
                for text in templates:
                    if "${" in text.replace(STAGE, ""):
                        raise SystemExit(f"{path}: {role} grants on {text}, a variable this check cannot fill in")
                statements.append((actions, templates))
        roles[function] = statements
    return roles


def resource_template(resource, resources):
    """A resource of a grant in the shared form, `${sls:stage}` left in."""
    if isinstance(resource, str):
        return arn_tail(resource)
    if "Fn::GetAtt" in resource:
        logical, attribute = resource["Fn::GetAtt"]
        return attribute_template(logical, attribute, resources)
    if "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        return arn_tail(separator.join(join_part(part, resources) for part in parts))
    raise SystemExit(f"serverless.yml: a grant on a resource this check does not know: {resource!r}")


def join_part(part, resources):
    if isinstance(part, str):
        return part
    # Region and account are the deployment's; any will do here.
    if isinstance(part.get("Ref"), str) and part["Ref"].startswith("AWS::"):
        return "*"
    return resource_template(part, resources)


def attribute_template(logical, attribute, resources):
    declared = resources.get(logical)
    # The functions' log groups are the Framework's, not declared under resources.
    if logical.endswith("LogGroup") and (declared is None or declared["Type"] == "AWS::Logs::LogGroup"):
        return f"loggroup/{logical}"
    if declared is None:
        raise SystemExit(f"serverless.yml: a grant on {logical}, which is not declared")
    kind = declared["Type"]
    if kind == "AWS::DynamoDB::Table":
        table = f"table/{declared['Properties']['TableName']}"
        return f"{table}/stream/*" if attribute == "StreamArn" else table
    if kind == "AWS::S3::Bucket":
        # The template gives the bucket no BucketName (CloudFormation picks one on AWS); on
        # moto, `pawql provision` names a stage's bucket pawql-<stage>-images
        # (src/adapters/aws/resources.rs, default_bucket_name), which is what callers touch.
        name = declared.get("Properties", {}).get("BucketName", f"pawql-{STAGE}-images")
        return f"bucket/{name}"
    if kind == "AWS::SQS::Queue":
        return f"queue/{logical}"
    raise SystemExit(f"serverless.yml: a grant on a {kind}, which this check does not know")


def arn_tail(text):
    """`arn:aws:ssm:*:*:parameter/pawql/x` -> `parameter/pawql/x`; S3's ARNs name no type, so
    theirs gain `bucket/`. Anything that is not an ARN (`*`) stays as it is."""
    if not text.startswith("arn:"):
        return text
    fields = text.split(":", 5)
    if len(fields) < 6:
        return text
    return f"bucket/{fields[5]}" if fields[2] == "s3" else fields[5]


ROLES = read_roles()


@functools.lru_cache(maxsize=None)
def grants(function, stage):
    """The Allow statements of `function`'s role as deployed on `stage`."""
    return [(actions, [template.replace(STAGE, stage) for template in templates])
            for actions, templates in ROLES[function]]


@functools.lru_cache(maxsize=4096)
def glob_pattern(pattern):
    return re.compile(".*".join(re.escape(piece) for piece in pattern.split("*")), re.DOTALL)


def glob(pattern, text):
    """`*` matches any run of characters, as IAM's wildcard does; nothing else is special."""
    return glob_pattern(pattern).fullmatch(text) is not None


def statement_allows(statement, need):
    actions, patterns = statement
    return (any(glob(a, need.action) for a in actions)
            and any(glob(p, need.resource) for p in patterns))


# --- Who is calling ---------------------------------------------------------------------

def query_params(query_string):
    """A query's parameters, decoded as SigV4 encodes them (`+` is a plus, not a space)."""
    params = {}
    for pair in query_string.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params.setdefault(unquote(name), unquote(value))
    return params


def credential(environ):
    """(access key id, service of the credential scope) a request is signed with: from the
    Authorization header, or a presigned URL's query; (None, None) when unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    query = query_params(environ.get("QUERY_STRING", ""))
    scope = None
    if authorization.startswith("AWS4-"):
        found = re.search(r"Credential=([^,\s]+)", authorization)
        scope = found.group(1) if found else ""
    elif "X-Amz-Credential" in query:
        scope = query["X-Amz-Credential"]
    # SigV2, which only S3 still takes: `AWS <key id>:<signature>`, or AWSAccessKeyId presigned.
    elif authorization.startswith("AWS "):
        return authorization[4:].rpartition(":")[0], "s3"
    elif "AWSAccessKeyId" in query:
        return query["AWSAccessKeyId"], "s3"
    if scope is None:
        return None, None
    # <key id>/<date>/<region>/<service>/aws4_request
    fields = scope.rsplit("/", 4)
    if len(fields) != 5:
        return scope, None
    return fields[0], fields[3]


def role_of(key_id):
    """The role a `role:<functions>:<stage>` key id acts with."""
    usage = ("expected role:<functions>:<stage>, <functions> one or more of "
             f"{', '.join(FUNCTIONS)} joined by +, <stage> letters, digits and -")
    fields = key_id.split(":")
    if len(fields) != 3:
        raise MalformedRole(f"the access key id {key_id!r} is malformed: {usage}")
    _, functions, stage = fields
    named = functions.split("+")
    if not all(f in FUNCTIONS for f in named):
        raise MalformedRole(f"the access key id {key_id!r} names a function serverless.yml has not: {usage}")
    if not STAGE_NAME.fullmatch(stage):
        raise MalformedRole(f"the access key id {key_id!r} names no stage: {usage}")
    return Role(tuple(dict.fromkeys(named)), stage)


# --- What a request needs ---------------------------------------------------------------

# The protocols refusals are answered in, by the X-Amz-Target's prefix.
JSON_TARGETS = {
    "DynamoDB_20120810": ("dynamodb", "application/x-amz-json-1.0"),
    "DynamoDBStreams_20120810": ("dynamodb-streams", "application/x-amz-json-1.0"),
    "AmazonSSM": ("ssm", "application/x-amz-json-1.1"),
    "RekognitionService": ("rekognition", "application/x-amz-json-1.1"),
}

Call = namedtuple("Call", "service operation protocol")


def call_of(environ, body, scope_service):
    """Which service and operation a request is, and the protocol its errors are written in:
    a JSON content type, "s3" (REST XML), or "query" (XML)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, operation = target.partition(".")
        service, content_type = JSON_TARGETS.get(prefix, (scope_service or prefix, "application/x-amz-json-1.1"))
        return Call(service, operation, content_type)
    if scope_service == "s3":
        return Call("s3", None, "s3")
    action = query_params(environ.get("QUERY_STRING", "")).get("Action")
    if action is None and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        action = query_params(body.decode("utf-8", "replace")).get("Action")
    return Call(scope_service or "unknown", action or environ.get("REQUEST_METHOD", "?"), "query")


def needs(call, environ, body):
    """Every permission `call` needs, as AWS authorises it."""
    if call.service == "s3":
        return s3_needs(environ, body)
    request = json_object(body)
    if call.service == "dynamodb":
        return dynamodb_needs(call.operation, request)
    # Stream reads name a shard iterator, not the stream: their resource is not known here.
    if call.service == "dynamodb-streams":
        return [Need(f"dynamodb:{call.operation}", UNKNOWN)]
    if call.service == "ssm":
        return ssm_needs(call.operation, request)
    if call.service == "rekognition":
        return rekognition_needs(call.operation, request)
    return [Need(f"{call.service}:{call.operation}", UNKNOWN)]


def json_object(body):
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def table_resource(name):
    if not isinstance(name, str) or not name:
        return UNKNOWN
    # A TableName may be the table's ARN.
    if name.startswith("arn:") and ":table/" in name:
        name = name.split(":table/", 1)[1]
    return f"table/{name}"


TRANSACTION_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def dynamodb_needs(operation, request):
    if operation in ("TransactWriteItems", "TransactGetItems"):
        # Authorised per part: the item action on the part's table, never the transaction's name.
        return [transaction_part_need(kind, part)
                for item in as_list(request.get("TransactItems") or []) if isinstance(item, dict)
                for kind, part in item.items()]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = request.get("RequestItems")
        return [Need(f"dynamodb:{operation}", table_resource(name)) for name in (tables if isinstance(tables, dict) else {})]
    resource = table_resource(request.get("TableName"))
    if request.get("IndexName"):
        resource = f"{resource}/index/{request['IndexName']}"
    return [Need(f"dynamodb:{operation}", resource)]


def transaction_part_need(kind, part):
    action = TRANSACTION_PARTS.get(kind)
    if action is None or not isinstance(part, dict):
        return Need(f"dynamodb:{kind}", UNKNOWN)
    return Need(f"dynamodb:{action}", table_resource(part.get("TableName")))


def parameter_resource(name):
    if not isinstance(name, str) or not name:
        return UNKNOWN
    if name.startswith("arn:"):
        return arn_tail(name)
    return f"parameter{name}" if name.startswith("/") else f"parameter/{name}"


def ssm_needs(operation, request):
    names = request.get("Names")
    if isinstance(names, list):
        return [Need(f"ssm:{operation}", parameter_resource(name)) for name in names]
    return [Need(f"ssm:{operation}", parameter_resource(request.get("Path") or request.get("Name")))]


def rekognition_needs(operation, request):
    out = [Need(f"rekognition:{operation}", "*")]
    image = request.get("Image")
    s3_object = image.get("S3Object") if isinstance(image, dict) else None
    # Rekognition reads an S3 object with the caller's rights.
    if isinstance(s3_object, dict):
        out.append(Need("s3:GetObject", f"bucket/{s3_object.get('Bucket', UNKNOWN)}/{s3_object.get('Name', UNKNOWN)}"))
    return out


# S3 REST: the operation is the method, the path, and a subresource in the query.

# A bucket in the host name: <bucket>.localhost, <bucket>.127.0.0.1, <bucket>.s3[.region].amazonaws.com.
VIRTUAL_HOST = re.compile(r"(?P<bucket>.+)\.(?:localhost|127\.0\.0\.1|s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com)")
# Parameters that do not change which operation a request is (listing, presigning, ids).
PLAIN_PARAMS = {
    "list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
    "encoding-type", "fetch-owner", "marker", "x-id", "partNumber", "uploadId", "versionId",
}
BUCKET_ACTIONS = {
    ("GET", None): "ListBucket",
    ("HEAD", None): "ListBucket",
    ("GET", "uploads"): "ListBucketMultipartUploads",
    ("GET", "versions"): "ListBucketVersions",
    ("GET", "location"): "GetBucketLocation",
    ("PUT", None): "CreateBucket",
    ("DELETE", None): "DeleteBucket",
    # What `pawql provision` sets after CreateBucket, under their IAM action names.
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("PUT", "cors"): "PutBucketCORS",
    ("PUT", "lifecycle"): "PutLifecycleConfiguration",
    ("PUT", "policy"): "PutBucketPolicy",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
}


def request_path(environ):
    """The request's path, percent-decoded once (`+` stays a plus, as S3 reads keys)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        # PATH_INFO is decoded already, in WSGI's latin-1 form.
        return environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    raw = raw.encode("latin-1").decode("utf-8", "replace")
    if "://" in raw:  # an absolute URI: drop scheme and host
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    return unquote(raw.partition("?")[0])


def s3_location(environ):
    """(bucket, key): the bucket from a virtual host, else the path's first segment."""
    path = request_path(environ)
    path = path[1:] if path.startswith("/") else path
    host = re.sub(r":\d+$", "", environ.get("HTTP_HOST", ""))
    virtual = VIRTUAL_HOST.fullmatch(host)
    if virtual:
        return virtual.group("bucket"), path
    bucket, _, key = path.partition("/")
    return bucket, key


def s3_subresource(params):
    for name in params:
        lower = name.lower()
        if name not in PLAIN_PARAMS and not lower.startswith("x-amz-") and not lower.startswith("response-"):
            return name
    return None


def s3_needs(environ, body):
    method = environ.get("REQUEST_METHOD", "GET")
    bucket, key = s3_location(environ)
    params = query_params(environ.get("QUERY_STRING", ""))
    subresource = s3_subresource(params)
    unknown = Need(f"s3:{method}" + (f"?{subresource}" if subresource else ""), UNKNOWN)
    if not bucket:
        return [Need("s3:ListAllMyBuckets", "*")] if (method, subresource) == ("GET", None) else [unknown]
    if not key:
        if (method, subresource) == ("POST", "delete"):
            return delete_objects_needs(bucket, environ, body)
        action = BUCKET_ACTIONS.get((method, subresource))
        return [Need(f"s3:{action}", f"bucket/{bucket}")] if action else [unknown]
    return s3_object_needs(method, f"bucket/{bucket}/{key}", params, subresource, environ) or [unknown]


def s3_object_needs(method, resource, params, subresource, environ):
    """What an operation on one object needs; [] for one this check does not know."""
    if subresource == "uploads" or "uploadId" in params:
        # Multipart uploads: starting, sending parts and completing are PutObject's; IAM
        # names aborting and listing parts apart.
        if method == "DELETE":
            return [Need("s3:AbortMultipartUpload", resource)]
        if method == "GET":
            return [Need("s3:ListMultipartUploadParts", resource)]
        if method in ("POST", "PUT") and subresource in (None, "uploads"):
            return [Need("s3:PutObject", resource)] + copy_source_needs(environ)
        return []
    if subresource is not None:
        return []
    versioned = "versionId" in params
    if method in ("GET", "HEAD"):
        return [Need("s3:GetObjectVersion" if versioned else "s3:GetObject", resource)]
    if method == "PUT":
        return [Need("s3:PutObject", resource)] + copy_source_needs(environ)
    if method == "DELETE":
        return [Need("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", resource)]
    return []


def copy_source_needs(environ):
    """A copy (CopyObject, UploadPartCopy) reads its source with the caller's rights."""
    source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
    if not source:
        return []
    source = unquote(source.partition("?")[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    return [Need("s3:GetObject", f"bucket/{bucket}/{key}" if bucket and key else UNKNOWN)]


def delete_objects_needs(bucket, environ, body):
    """DeleteObjects is authorised as a DeleteObject of each key it names."""
    try:
        root = ElementTree.fromstring(aws_chunked_payload(environ, body))
    except ElementTree.ParseError:
        return [Need("s3:DeleteObject", UNKNOWN)]
    return [Need("s3:DeleteObject", f"bucket/{bucket}/{child.text or ''}")
            for element in root.iter() if local_name(element) == "Object"
            for child in element if local_name(child) == "Key"]


def local_name(element):
    """An XML element's tag without its namespace (S3's is optional)."""
    return element.tag.rpartition("}")[2]


def aws_chunked_payload(environ, body):
    """The payload of an `aws-chunked` body (`<hex size>[;...]\\r\\n<data>\\r\\n`... `0`), else the body."""
    if "aws-chunked" not in environ.get("HTTP_CONTENT_ENCODING", ""):
        return body
    payload, rest = b"", body
    while rest:
        header, _, rest = rest.partition(b"\r\n")
        size = int(header.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        payload, rest = payload + rest[:size], rest[size + 2:]
    return payload


# --- Refusing ---------------------------------------------------------------------------

def refusal(environ, body):
    """AWS's answer refusing this request, as (status, headers, body); None if IAM lets it
    through or does not apply (a key id other than role:…, or no signature at all)."""
    key_id, scope_service = credential(environ)
    if key_id is None or not key_id.startswith(ROLE_PREFIX):
        return None
    call = call_of(environ, body, scope_service)
    try:
        role = role_of(key_id)
    except MalformedRole as malformed:
        return refused(call, environ, f"IAM as deployed: {malformed}")
    for need in needs(call, environ, body):
        if not role.allows(need):
            return refused(call, environ, f"IAM as deployed, for {key_id}: serverless.yml's role of {role.name} "
                                          f"does not allow {need.action} on {need.resource}")
    return None


def refused(call, environ, message):
    method = environ.get("REQUEST_METHOD", "")
    # One line, loud, for whoever reads the test's output; successes print nothing.
    print(f"moto-iam: refused {method} {environ.get('PATH_INFO', '')}: {message}".replace("\n", " "),
          file=sys.stderr, flush=True)
    if call.protocol == "s3":
        status = "403 Forbidden"
        content_type = "application/xml"
        answer = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                  f"<Message>{escape(message)}</Message><RequestId>pawql-iam</RequestId></Error>").encode()
        # A HEAD is answered without a body; the status says it all.
        if method == "HEAD":
            answer = b""
    elif call.protocol == "query":
        status = "403 Forbidden"
        content_type = "text/xml"
        answer = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                  f"<Message>{escape(message)}</Message></Error><RequestId>pawql-iam</RequestId></ErrorResponse>").encode()
    else:
        status = "400 Bad Request"
        content_type = call.protocol
        answer = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(answer))),
               ("x-amzn-RequestId", "pawql-iam")]
    return status, headers, answer


# --- The self-test ----------------------------------------------------------------------

def signed_request(key_id, service, method="POST", uri="/", host="127.0.0.1:5000", headers=None,
                   presigned=False):
    """A WSGI environ as werkzeug would make it for a SigV4 request (or a presigned URL)."""
    path, _, query = uri.partition("?")
    scope = f"{key_id}/20260101/us-east-1/{service}/aws4_request"
    environ = {
        "REQUEST_METHOD": method, "RAW_URI": uri, "PATH_INFO": unquote(path), "QUERY_STRING": query,
        "HTTP_HOST": host,
    }
    if presigned:
        encoded = scope.replace(":", "%3A").replace("/", "%2F").replace("+", "%2B")
        environ["QUERY_STRING"] = "&".join(filter(None, [query, f"X-Amz-Credential={encoded}", "X-Amz-Signature=00"]))
    else:
        environ["HTTP_AUTHORIZATION"] = f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=00"
    for name, value in (headers or {}).items():
        environ[name] = value
    return environ


def dynamodb_request(key_id, operation, request):
    environ = signed_request(key_id, "dynamodb", headers={"HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}"})
    return environ, json.dumps(request).encode()


def s3_needs_of(method, uri, host="127.0.0.1:5000", headers=None, body=b""):
    return s3_needs(signed_request("role:api:t1x2", "s3", method, uri, host, headers), body)


def self_test():
    # Refusals are logged to stderr; here they are what is asked for, so they are kept quiet.
    with contextlib.redirect_stderr(io.StringIO()):
        failures, checks = self_test_checks()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(f"moto_iam self-test: {checks - len(failures)} of {checks} checks passed")
    return 1 if failures else 0


def self_test_checks():
    failures = []
    checks = 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    api, stream, scan = (Role((f,), "t1x2") for f in FUNCTIONS)
    s = "pawql-t1x2"

    # each_role_is_read_as_written, with the stage's full names.
    granted = [
        (api, Need("dynamodb:GetItem", f"table/{s}-chunkInfoTable")),
        (api, Need("dynamodb:DeleteItem", f"table/{s}-chunkInfoTable")),
        (api, Need("s3:PutObject", f"bucket/{s}-images/0123/cat")),
        (api, Need("s3:ListBucket", f"bucket/{s}-images")),
        (api, Need("ssm:GetParametersByPath", "parameter/pawql/t1x2")),
        (api, Need("ssm:GetParametersByPath", "parameter/pawql/t1x2/")),
        (api, Need("dynamodb:Query", f"table/{s}-imageChunksTable")),
        (api, Need("logs:PutLogEvents", "loggroup/ApiLogGroup")),
        (api, Need("kms:Decrypt", "key/0123-abcd")),
        (stream, Need("s3:PutObject", f"bucket/{s}-images/0123/cat")),
        (stream, Need("dynamodb:BatchGetItem", f"table/{s}-scanTable")),
        (scan, Need("rekognition:DetectLabels", "*")),
        (scan, Need("dynamodb:Query", f"table/{s}-scanTable/index/UnfinishedScans")),
        (scan, Need("s3:PutObject", f"bucket/{s}-images/scan-debug/x")),
        (scan, Need("dynamodb:GetRecords", f"table/{s}-scanTable/stream/2026-12-02T00:00:00.000")),
        (scan, Need("sqs:SendMessage", "queue/ScanDeadLetterQueue")),
    ]
    for role, need in granted:
        check(role.allows(need), f"{role.name} is granted {need}")
    # What a real account would refuse: the old sweep's Scan, writes to SSM, listing with
    # object rights only, anything on another table; and each function's work to the others.
    refused_needs = [
        (api, Need("dynamodb:Scan", f"table/{s}-scanTable")),
        (api, Need("ssm:PutParameter", "parameter/pawql/t1x2/apiKeys")),
        (api, Need("s3:ListBucket", f"bucket/{s}-images/x")),
        (api, Need("dynamodb:GetItem", "table/someoneElsesTable")),
        (api, Need("dynamodb:DeleteTable", f"table/{s}-chunkInfoTable")),
        # The index of the layout before write shards is gone, and so is the right to it.
        (api, Need("dynamodb:Query", f"table/{s}-imageChunksTable/index/LabelChunkIndex")),
        (api, Need("rekognition:DetectLabels", "*")),
        (api, Need("dynamodb:Query", f"table/{s}-scanTable/index/UnfinishedScans")),
        (api, Need("sqs:SendMessage", "queue/ScanDeadLetterQueue")),
        (api, Need("logs:PutLogEvents", "loggroup/ScanLogGroup")),
        (stream, Need("rekognition:DetectLabels", "*")),
        (stream, Need("dynamodb:Query", f"table/{s}-imageChunksTable")),
        (scan, Need("s3:PutObject", f"bucket/{s}-images/0123/cat")),
        (scan, Need("dynamodb:DeleteItem", f"table/{s}-imageChunksTable")),
        (scan, Need("dynamodb:BatchGetItem", f"table/{s}-scanTable")),
    ]
    for role, need in refused_needs:
        check(not role.allows(need), f"{role.name} is refused {need}")
    # Roles together: what either allows.
    api_scan = role_of("role:api+scan:t1x2")
    check(api_scan.allows(Need("rekognition:DetectLabels", "*")), "api+scan may detect labels")
    check(api_scan.allows(Need("dynamodb:DeleteItem", f"table/{s}-imageChunksTable")), "api+scan may delete rows")
    check(not api_scan.allows(Need("dynamodb:Scan", f"table/{s}-scanTable")), "api+scan may not Scan")

    # Another stage's tables, bucket and parameters: refused for every role, as is a stage
    # that only begins like the caller's.
    for role, need in granted:
        if "t1x2" in need.resource:
            for other in ("other", "t1x2x", "t1"):
                elsewhere = Need(need.action, need.resource.replace("t1x2", other))
                check(not role.allows(elsewhere), f"{role.name} on t1x2 is refused {elsewhere}")

    # an_s3_request_is_authorised_on_its_whole_key: path-style and virtual-hosted alike.
    put = [Need("s3:PutObject", f"bucket/{s}-images/scan-debug/x.json")]
    check(s3_needs_of("PUT", f"/{s}-images/scan-debug/x.json?x-id=PutObject") == put, "path-style PUT")
    check(s3_needs_of("PUT", "/scan-debug/x.json?x-id=PutObject", host=f"{s}-images.localhost:5000") == put,
          "virtual-hosted PUT on localhost")
    check(s3_needs_of("PUT", "/scan-debug/x.json", host=f"{s}-images.127.0.0.1:5000") == put,
          "virtual-hosted PUT on 127.0.0.1")
    listing = [Need("s3:ListBucket", f"bucket/{s}-images")]
    check(s3_needs_of("GET", f"/{s}-images?list-type=2&prefix=cat%2F") == listing, "ListObjectsV2")
    check(s3_needs_of("GET", "/?list-type=2", host=f"{s}-images.localhost:5000") == listing, "virtual ListObjectsV2")
    check(s3_needs_of("GET", f"/{s}-images/") == listing, "plain listing")
    check(s3_needs_of("GET", f"/{s}-images/cat/a%20b+c%2Bd.jpg?x-id=GetObject")
          == [Need("s3:GetObject", f"bucket/{s}-images/cat/a b+c+d.jpg")], "a key is URL-decoded, + kept")
    check(s3_needs_of("HEAD", f"/{s}-images/cat/x") == [Need("s3:GetObject", f"bucket/{s}-images/cat/x")], "HeadObject")
    check(s3_needs_of("DELETE", f"/{s}-images/cat/x?x-id=DeleteObject")
          == [Need("s3:DeleteObject", f"bucket/{s}-images/cat/x")], "DeleteObject")
    check(s3_needs_of("PUT", f"/{s}-images/cat/y", headers={"HTTP_X_AMZ_COPY_SOURCE": f"/{s}-images/staging/z%20z"})
          == [Need("s3:PutObject", f"bucket/{s}-images/cat/y"), Need("s3:GetObject", f"bucket/{s}-images/staging/z z")],
          "CopyObject reads its source")
    deleting = (b'<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                b"<Object><Key>cat/a</Key></Object><Object><Key>scan-debug/b</Key></Object></Delete>")
    check(s3_needs_of("POST", f"/{s}-images?delete", body=deleting)
          == [Need("s3:DeleteObject", f"bucket/{s}-images/cat/a"), Need("s3:DeleteObject", f"bucket/{s}-images/scan-debug/b")],
          "DeleteObjects is a DeleteObject per key")
    for method, uri in [("POST", "/b/k?uploads"), ("PUT", "/b/k?partNumber=1&uploadId=u"), ("POST", "/b/k?uploadId=u")]:
        check(s3_needs_of(method, uri) == [Need("s3:PutObject", "bucket/b/k")], f"multipart {method} {uri}")
    check(s3_needs_of("DELETE", "/b/k?uploadId=u") == [Need("s3:AbortMultipartUpload", "bucket/b/k")], "abort multipart")
    check(s3_needs_of("PUT", "/b/k?tagging") == [Need("s3:PUT?tagging", UNKNOWN)], "an unknown S3 call needs it on ?")
    check(s3_needs_of("PUT", "/b?encryption") == [Need("s3:PutEncryptionConfiguration", "bucket/b")], "PutBucketEncryption")

    # Whole requests: who signed, what is refused, and how.
    env, body = dynamodb_request("role:api:t1x2", "Scan", {"TableName": f"{s}-scanTable"})
    answer = refusal(env, body)
    check(answer is not None and answer[0].startswith("400")
          and ("Content-Type", "application/x-amz-json-1.0") in answer[1]
          and json.loads(answer[2])["__type"] == "AccessDeniedException"
          and f"serverless.yml's role of api does not allow dynamodb:Scan on table/{s}-scanTable"
          in json.loads(answer[2])["message"], f"a DynamoDB refusal as AWS writes it: {answer}")
    check(refusal(*dynamodb_request("role:api:t1x2", "GetItem", {"TableName": f"{s}-scanTable"})) is None,
          "GetItem is granted")
    answer = refusal(*dynamodb_request("role:api:t1x2", "GetItem", {"TableName": "pawql-other-scanTable"}))
    check(answer is not None and "does not allow dynamodb:GetItem on table/pawql-other-scanTable" in answer[2].decode(),
          "another stage's table is refused")
    answer = refusal(*dynamodb_request("role:api+scan:t1x2", "Scan", {"TableName": f"{s}-scanTable"}))
    check(answer is not None and "role of api+scan does not allow" in answer[2].decode(), "a union is named as asked")
    transaction = {"TransactItems": [{"Put": {"TableName": f"{s}-chunkInfoTable"}},
                                     {"Delete": {"TableName": f"{s}-imageChunksTable"}}]}
    check(refusal(*dynamodb_request("role:api:t1x2", "TransactWriteItems", transaction)) is None,
          "a transaction of granted item actions")
    transaction["TransactItems"].append({"Update": {"TableName": f"{s}-scanTable"}})
    answer = refusal(*dynamodb_request("role:api:t1x2", "TransactWriteItems", transaction))
    check(answer is not None and f"dynamodb:UpdateItem on table/{s}-scanTable" in answer[2].decode(),
          "a transaction is refused on the part not granted")
    check(refusal(*dynamodb_request("role:stream:t1x2", "BatchGetItem",
                                    {"RequestItems": {f"{s}-scanTable": {}, "pawql-other-chunkInfoTable": {}}}))
          is not None, "a batch needs every table")
    env = signed_request("role:api:t1x2", "ssm", headers={"HTTP_X_AMZ_TARGET": "AmazonSSM.GetParametersByPath"})
    check(refusal(env, b'{"Path": "/pawql/t1x2/"}') is None, "the stage's parameters")
    answer = refusal(env, b'{"Path": "/pawql/other/"}')
    check(answer is not None and ("Content-Type", "application/x-amz-json-1.1") in answer[1]
          and "ssm:GetParametersByPath on parameter/pawql/other/" in answer[2].decode(), "another stage's parameters")
    env = signed_request("role:scan:t1x2", "rekognition", headers={"HTTP_X_AMZ_TARGET": "RekognitionService.DetectLabels"})
    reading = lambda bucket: json.dumps({"Image": {"S3Object": {"Bucket": bucket, "Name": "cat/x"}}}).encode()  # noqa: E731
    check(refusal(env, reading(f"{s}-images")) is None, "Rekognition reads the stage's bucket")
    answer = refusal(env, reading("pawql-other-images"))
    check(answer is not None and "s3:GetObject on bucket/pawql-other-images/cat/x" in answer[2].decode(),
          "Rekognition reads another stage's bucket with the caller's rights")
    s3_put = lambda key_id, **kw: signed_request(key_id, "s3", "PUT", f"/{s}-images/cat/x.jpg?x-id=PutObject", **kw)  # noqa: E731
    check(refusal(s3_put("role:api:t1x2"), b"") is None, "api puts an image")
    answer = refusal(s3_put("role:scan:t1x2"), b"")
    check(answer is not None and answer[0].startswith("403") and b"<Code>AccessDenied</Code>" in answer[2]
          and b"<RequestId>pawql-iam</RequestId>" in answer[2]
          and f"role of scan does not allow s3:PutObject on bucket/{s}-images/cat/x.jpg".encode() in answer[2],
          f"an S3 refusal as AWS writes it: {answer}")
    check(refusal(s3_put("role:api:t1x2", presigned=True), b"") is None, "a presigned PUT signed by api")
    check(refusal(s3_put("role:scan:t1x2", presigned=True), b"") is not None, "a presigned PUT signed by scan")
    check(refusal(s3_put("role:api:other", presigned=True), b"") is not None, "a presigned PUT for another stage")
    head = signed_request("role:stream:t1x2", "s3", "HEAD", "/pawql-other-images/cat/x")
    answer = refusal(head, b"")
    check(answer is not None and answer[0].startswith("403") and answer[2] == b"", "a refused HEAD has no body")
    env = signed_request("role:scan:t1x2", "sts", headers={"CONTENT_TYPE": "application/x-www-form-urlencoded"})
    answer = refusal(env, b"Action=GetCallerIdentity&Version=2011-06-15")
    check(answer is not None and "does not allow sts:GetCallerIdentity on ?" in answer[2].decode(),
          "an unknown call is refused")

    # `testing` (and anything unsigned) is never checked, whatever it does.
    for key_id in ("testing", "AKIAIOSFODNN7EXAMPLE", "rolex:api:t1x2"):
        check(refusal(*dynamodb_request(key_id, "DeleteTable", {"TableName": "pawql-other-scanTable"})) is None,
              f"{key_id} is not checked")
        check(refusal(signed_request(key_id, "s3", "PUT", "/anything/at/all"), b"") is None, f"{key_id} on S3")
    check(refusal({"REQUEST_METHOD": "GET", "RAW_URI": "/b/k", "QUERY_STRING": "", "HTTP_HOST": "h"}, b"") is None,
          "unsigned is not checked")

    # A malformed role key id is refused, saying why.
    for key_id in ("role:api", "role:api:", "role::t1x2", "role:cron:t1x2", "role:api+:t1x2", "role:api:t1*",
                   "role:api:t1:x"):
        answer = refusal(*dynamodb_request(key_id, "GetItem", {"TableName": f"{s}-scanTable"}))
        check(answer is not None and "expected role:<functions>:<stage>" in answer[2].decode(), f"{key_id} is refused")

    return failures, checks


if __name__ == "__main__":
    if sys.argv[1:] != ["--self-test"]:
        sys.exit("usage: moto_iam.py --self-test (moto-server.py imports the rest)")
    sys.exit(self_test())
