"""Profile: where a status poll's time goes, in-process, against the bare /bench/ping view.

Each poll goes through Django's WSGI handler (every middleware, the request_started /
request_finished signals that open and close the database connection), the way gunicorn
calls it, with the bench_status data (a training in flight) and the bench_polls data (a cut
grid, My Characters, the notification badge). For each endpoint: wall and CPU per request,
queries per request, the ratio to ping, and with --profile the top entries of cProfile over
the loop (sorted by own time and by cumulative time).

    .venv/bin/python bench/profile_status.py --db sqlite --requests 500 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    QueryLog,
    add_db_arguments,
    bench_environment,
    db_label,
    machine_note,
    passthrough_args,
    run_children,
    setup_django,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_arguments(parser)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default="", help="comma-separated endpoint names")
    args = parser.parse_args()
    if args.child_db is None:
        sys.exit(run_children(__file__, args.db, passthrough_args(sys.argv[1:])))
    with bench_environment(args.child_db, "profile", settings_module="bench.settings"):
        run(args)


def run(args) -> None:
    setup_django()
    from bench.bench_status import seed

    print(f"machine: {machine_note()}; database: {db_label()}")
    token, job = seed()
    from bench.bench_polls import poll_endpoints, seed_polls

    polls = seed_polls() if args.only != "training-status" else {}
    endpoints = poll_endpoints(token, job, polls, args.only)
    handler = _handler()
    results = {}
    for name, (path, headers) in endpoints.items():
        environ = _environ(path, headers)
        for _ in range(20):  # warm-up: imports, caches, templates
            _call(handler, environ, path)
        with QueryLog() as log:
            _call(handler, environ, path)
        profiler = cProfile.Profile() if args.profile else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for _ in range(args.requests):
            _call(handler, environ, path)
        if profiler:
            profiler.disable()
        wall = (time.perf_counter() - wall0) / args.requests * 1000
        cpu = (time.process_time() - cpu0) / args.requests * 1000
        results[name] = (wall, cpu, len(log))
        if profiler:
            print(f"\n--- {name}: cProfile over {args.requests} requests ---")
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
                print(_trim(out.getvalue()))
    ping_wall, ping_cpu, _q = results["ping"]
    print(f"\n{'endpoint':<24}{'wall ms':>9}{'CPU ms':>9}{'queries':>9}{'CPU/ping':>10}")
    for name, (wall, cpu, queries) in results.items():
        print(f"{name:<24}{wall:>9.2f}{cpu:>9.2f}{queries:>9}{cpu / ping_cpu:>9.1f}x")


def _handler():
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _environ(path: str, headers: dict) -> dict:
    from django.test.client import RequestFactory

    path, _sep, query = path.partition("?")
    environ = RequestFactory()._base_environ(
        PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD="GET", **headers
    )
    environ["SERVER_NAME"] = "127.0.0.1"
    environ["HTTP_HOST"] = "127.0.0.1"
    return environ


def _call(handler, environ: dict, path: str) -> None:
    status = []
    body = b"".join(handler(dict(environ), lambda s, h, *a: status.append(s)))
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"{path}: {status} {body[:300]!r}")


def _trim(text: str) -> str:
    """cProfile's table without its header noise, paths shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return "\n".join(
        line.replace(root, "").replace(".venv/lib/python3.11/site-packages/", "")
        for line in lines[start:]
    )


if __name__ == "__main__":
    main()
