"""A warm parent for moto servers (see forkserver.rs beside it).

A moto server spends about 4 s of CPU before it serves its first state
machine: importing moto, its Step Functions engine (an ANTLR grammar built
at import), and botocore's endpoint data. This process pays that once and
forks one moto server per request, each a separate process with its own
state, socket and MOTO_PORT, as if started afresh.

Protocol, on the Unix socket named by argv[1] (in a 0700 directory):
the client sends one line of JSON {"socket": path, "moto_port": n}; the
forked server answers with its process id on one line and serves moto on
`path`. The connection is the server's lifeline: when the client closes it
or dies, the server exits. This process exits once it has had no server
and no request for IDLE_SECONDS.
"""

import functools
import json
import os
import select
import socket
import sys
import threading
import time

IDLE_SECONDS = 60
# moto's Distributed Map worker takes its next item by calling itself, one
# Python frame per item: past ~1,000 items per worker (MaxConcurrency) it
# dies of RecursionError and the Map run never ends. These limits carry
# 10,000 items per worker.
RECURSION_LIMIT = 100_000
THREAD_STACK_BYTES = 64 << 20


def preload():
    """Import what every clonesync run of moto imports, before any fork."""
    import moto.server  # noqa: F401  (werkzeug, flask, moto's dispatcher)
    from moto.backends import get_backend

    for service in ("stepfunctions", "dynamodb", "sts", "s3"):
        get_backend(service)
    # The Step Functions engine: the ASL grammar and its interpreter.
    import moto.stepfunctions.parser.models  # noqa: F401
    import moto.stepfunctions.parser.backend.execution  # noqa: F401
    import moto.stepfunctions.parser.asl.parse.asl_parser  # noqa: F401
    import moto.stepfunctions.responses  # noqa: F401
    import moto.dynamodb.responses  # noqa: F401
    import moto.stepfunctions.urls  # noqa: F401
    import moto.dynamodb.urls  # noqa: F401
    import moto.s3.responses  # noqa: F401
    import moto.s3.urls  # noqa: F401
    import boto3
    import botocore.loaders

    # botocore parses its JSON data again for every new session, and moto
    # makes one per backend and per Lambda task (about 0.2 s each, a third
    # of a run's CPU). The files do not change while moto runs, so each is
    # parsed once and shared, as botocore already shares it within a
    # session.
    parsed = functools.lru_cache(maxsize=None)(
        botocore.loaders.JSONFileLoader().load_file
    )
    botocore.loaders.JSONFileLoader.load_file = lambda _self, path: parsed(path)
    # What a run reads: the endpoint and partition data, and the models of
    # the clients moto's Step Functions engine makes (Lambda) and serves.
    session = boto3.Session()
    session.get_available_regions("stepfunctions")
    for service in ("lambda", "stepfunctions", "dynamodb", "sts", "s3"):
        session.client(service, region_name="us-east-1")
    cache_engine_clients()
    if threading.active_count() != 1:
        sys.exit("moto forkserver: preloading started a thread; forking is unsafe")


def cache_engine_clients():
    """One boto3 client per service and Region for moto's Step Functions
    engine, which otherwise builds a new one for every Lambda task and every
    S3 read of a Distributed Map (15 % of moto's CPU over 5,000 map items).
    Its clients all reach this process with the same fixed credentials;
    botocore clients are safe to share between threads."""
    import moto.stepfunctions.parser.asl.utils.boto_client as engine
    # The modules that took the function by name, imported before it is
    # replaced in them.
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils  # noqa: F401
    import moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3  # noqa: F401

    build = engine.boto_client_for

    @functools.lru_cache(maxsize=None)
    def cached(region, service):
        return build(region=region, service=service)

    def boto_client_for(region, service, state_credentials=None):
        return cached(region, service)

    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is build:
            module.boto_client_for = boto_client_for


def serve(conn, moto_socket, moto_port):
    """In the forked child: run moto on moto_socket until conn closes."""
    os.environ["MOTO_PORT"] = str(moto_port)
    # Room for the Distributed Map's workers, which recurse once per item
    # (the same limits moto.rs gives a moto started afresh).
    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(THREAD_STACK_BYTES)
    conn.sendall(b"%d\n" % os.getpid())

    def lifeline():
        try:
            while conn.recv(64):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=lifeline, daemon=True).start()
    from moto.server import main

    try:
        main(["-H", "unix://" + moto_socket, "-p", "0"])
    finally:
        os._exit(0)


def read_request(conn):
    conn.settimeout(5)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            raise ValueError("the client closed before its request")
        data += chunk
    request = json.loads(data)
    conn.settimeout(None)
    return str(request["socket"]), int(request["moto_port"])


def main():
    path = sys.argv[1]
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    servers = set()
    last = time.monotonic()
    while True:
        for pid in list(servers):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                servers.discard(pid)
        if servers:
            last = time.monotonic()
        elif time.monotonic() - last > IDLE_SECONDS:
            break
        ready, _, _ = select.select([listener], [], [], 1.0)
        if not ready:
            continue
        conn, _ = listener.accept()
        last = time.monotonic()
        try:
            moto_socket, moto_port = read_request(conn)
        except (OSError, ValueError, KeyError, TypeError):
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            serve(conn, moto_socket, moto_port)
        servers.add(pid)
        conn.close()
    # Unlink before closing: a client that connects now fails and starts
    # a new forkserver instead of waiting on this one.
    os.unlink(path)
    listener.close()


if __name__ == "__main__":
    main()
