"""moto's server for pawql's tests: `moto-server.py HOST PORT`, run with the venv's python.

moto_server handles requests on many threads, and its DynamoDB model has no locks: two
conditional TransactWriteItems racing on one item can both pass their conditions, which real
DynamoDB never allows (transactions are serialisable). Our concurrency tests would then
measure moto instead of us. So this runs moto's own WSGI app with one request at a time:
connections are still accepted concurrently, but each request is handled under one lock.

moto also ignores `TransactWriteItems`' `ClientRequestToken`, which DynamoDB documents: a
repeat of a successful call with the same token within 10 minutes "returns successfully
without making any changes", and one with the same token but other parameters is refused
with `IdempotentParameterMismatchException`. pawql relies on that to resend a write whose
outcome is unknown (docs/aws-rules.md, D3), so it is modelled here, in front of moto, for
every client and process the tests start.

moto enforces no IAM either. Requests signed with a `role:<functions>:<stage>` access key id
are checked against the functions' roles in serverless.yml first (scripts/moto_iam.py), and
refused as AWS would refuse them, before moto or the token bookkeeping sees them.
"""

import hashlib
import io
import json
import os
import sys
import threading
import time

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler

# moto_iam sits next to this script. Python puts the script's folder on sys.path, but not
# under -P or PYTHONSAFEPATH, so say so explicitly: this then runs from any cwd, any way.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_iam  # noqa: E402

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

IDEMPOTENCY_WINDOW_SECONDS = 600
# token -> (first seen, digest of the request's parameters, status, headers, body)
answered_tokens = {}


def serialised(environ, start_response):
    # Read and checked outside the lock: neither touches moto, and a slow upload should not
    # hold up every other request.
    raw = request_body(environ)
    refused = moto_iam.refusal(environ, raw)
    if refused is not None:
        status, headers, answer = refused
        start_response(status, headers)
        return [answer]
    with lock:
        replay = idempotent_repeat(environ, raw)
        if replay is not None:
            status, headers, body = replay
            start_response(status, headers)
            return [body]
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)
            return start_response(status, headers, exc_info)

        # Materialise the body inside the lock: the handler's work happens while iterating.
        body = b"".join(app(environ, capture))
        remember(environ, captured, body)
        return [body]


def request_body(environ):
    """The request's body, read once and put back for moto."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        raw = environ["wsgi.input"].read(int(length))
    elif environ.get("wsgi.input_terminated"):
        # A chunked body (werkzeug has de-chunked it): read to the end, so moto still gets all.
        raw = environ["wsgi.input"].read()
    else:
        # Neither a length nor chunks: no body. Reading on would wait for the client to close.
        raw = b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def transaction_token(environ, raw):
    """The (token, digest) of a TransactWriteItems with a ClientRequestToken, else None."""
    if environ.get("HTTP_X_AMZ_TARGET") != "DynamoDB_20120810.TransactWriteItems":
        return None
    try:
        request = json.loads(raw)
    except ValueError:
        return None
    token = request.get("ClientRequestToken")
    if not token:
        return None
    return token, hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def idempotent_repeat(environ, raw):
    found = transaction_token(environ, raw)
    if found is None:
        return None
    token, digest = found
    now = time.monotonic()
    for old in [t for t, seen in answered_tokens.items() if now - seen[0] > IDEMPOTENCY_WINDOW_SECONDS]:
        del answered_tokens[old]
    seen = answered_tokens.get(token)
    if seen is None:
        environ["pawql.token"] = (token, digest)
        return None
    if seen[1] != digest:
        body = json.dumps({
            "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "message": "The request uses the same client token as a previous, but non-identical request.",
        }).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))], body
    return seen[2], seen[3], seen[4]


def remember(environ, captured, body):
    token = environ.get("pawql.token")
    if token is not None and captured.get("status", "").startswith("200"):
        answered_tokens[token[0]] = (time.monotonic(), token[1], captured["status"], captured["headers"], body)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, use_reloader=False, request_handler=MotoRequestHandler)
