"""moto's server for pawql's tests: `moto-server.py HOST PORT`, run with the venv's python.

moto_server handles requests on many threads, and its DynamoDB model has no locks: two
conditional TransactWriteItems racing on one item can both pass their conditions, which real
DynamoDB never allows (transactions are serialisable). Our concurrency tests would then
measure moto instead of us. So this runs moto's own WSGI app with one request at a time:
connections are still accepted concurrently, but each request is handled under one lock.
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Materialise the body inside the lock: the handler's work happens while iterating.
        return list(app(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, use_reloader=False, request_handler=MotoRequestHandler)
