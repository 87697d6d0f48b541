"""Benchmark: the training status endpoint under load, against a minimal Django JSON view.

GET /api/character/training-status/<task_id> (SPEC §8) for a character whose training is in
flight (a RUNNING training Job with a RUNNING fal call: request id, step logs read, 630/1500
steps), called with an API token (Authorization: Bearer), is loaded with wrk against gunicorn
(2 gthread workers x 4 threads, the Procfile's worker class: keep-alive connections, and a
thread can wait on the database while another runs) on 127.0.0.1 with bench/settings.py.
Measured in the same run, same server and middleware: /bench/ping, a view that only returns
JsonResponse({"ok": True}) (bench/urls.py). The two are loaded alternately, --repeat times each;
the medians of requests/s and p99 are printed with the ratios status/ping.

Also, in-process with Django's test Client: the queries of one status request (the first one,
which claims the debounced refresh and enqueues a run_job task, and a later one), and how many
run_job tasks the status reads enqueued in all (the refresh is debounced: one per
REFRESH_AFTER_SECONDS).

    make bench            # or: .venv/bin/python bench/bench_status.py --db both --duration 15
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    ROOT,
    QueryLog,
    add_db_arguments,
    bench_environment,
    db_label,
    machine_note,
    median,
    passthrough_args,
    run_children,
    setup_django,
)

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_arguments(parser)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per endpoint")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian package)")
    if args.child_db is None:
        sys.exit(run_children(__file__, args.db, passthrough_args(sys.argv[1:])))
    with bench_environment(args.child_db, "status", settings_module="bench.settings") as env:
        run(args, env)


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    setup_django()
    from django_q.models import OrmQ

    print(f"machine: {machine_note()}; database: {db_label()}")
    token, job = seed()
    queries_first, queries_later, enqueued_inline = count_queries(token, job)
    queries_cold = count_cold_queries(token, job)
    print(
        f"queries per status request: {queries_later} while its rows are reused "
        f"(STATUS_CACHE_SECONDS), {queries_cold} with every cache empty (token, job, call, "
        f"character, account); the first one, which claims the refresh and enqueues run_job: "
        f"{queries_first}"
    )
    print(f"in-process: 21 status reads enqueued {enqueued_inline} run_job task(s)")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    urls = {
        "ping": f"{base}/bench/ping",
        "status": f"{base}/api/character/training-status/{job.public_id}",
    }
    queued_before = OrmQ.objects.count()
    server = start_gunicorn(port, env)
    try:
        check(urls["status"], token)
        results: dict[str, list[dict]] = {"ping": [], "status": []}
        started = time.monotonic()
        for i in range(args.repeat):
            order = ("ping", "status") if i % 2 == 0 else ("status", "ping")
            for name in order:
                cpu_before = worker_cpu_seconds(server)
                result = wrk(urls[name], token, args)
                cpu = worker_cpu_seconds(server) - cpu_before
                result["cpu_ms"] = cpu / result["requests"] * 1000
                results[name].append(result)
                print(
                    f"  run {i + 1} {name:<6} {result['rps']:8.0f} req/s  "
                    f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
                    f"server CPU {result['cpu_ms']:5.2f} ms/request  "
                    f"({result['requests']} requests, {result['errors']} errors/non-2xx)",
                    flush=True,
                )
        loaded_seconds = time.monotonic() - started
    finally:
        stop(server)
    enqueued = OrmQ.objects.count() - queued_before
    status_requests = sum(r["requests"] for r in results["status"])

    summary = {
        name: {
            "rps": median([r["rps"] for r in runs]),
            "p50_ms": median([r["p50_ms"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]),
            "cpu_ms": median([r["cpu_ms"] for r in runs]),
        }
        for name, runs in results.items()
    }
    ping, status = summary["ping"], summary["status"]
    print(
        f"\ngunicorn gthread 2 workers x 4 threads; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s --latency, median of {args.repeat}"
    )
    print(f"{'':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/req':>12}")
    for name in ("ping", "status"):
        s = summary[name]
        print(
            f"{name:<8}{s['rps']:>10.0f}{s['p50_ms']:>10.2f}{s['p99_ms']:>10.2f}"
            f"{s['cpu_ms']:>12.2f}"
        )
    print(
        f"ratio status/ping: req/s {status['rps'] / ping['rps']:.2f}x, "
        f"p99 {status['p99_ms'] / ping['p99_ms']:.2f}x, "
        f"server CPU per request {status['cpu_ms'] / ping['cpu_ms']:.1f}x"
    )
    from webtoon.jobs.services import REFRESH_AFTER_SECONDS as debounce

    windows = math.ceil(loaded_seconds / debounce) + 1
    print(
        f"run_job tasks enqueued by {status_requests} status requests under load: {enqueued} "
        f"(debounce bound: at most one per {debounce} s, {windows} in {loaded_seconds:.0f} s)"
    )
    print("JSON " + json.dumps({
        "summary": summary, "enqueued": enqueued, "status_requests": status_requests,
        "queries": queries_later, "queries_first": queries_first, "queries_cold": queries_cold,
    }))  # fmt: skip
    if enqueued > windows or any(r["errors"] for runs in results.values() for r in runs):
        sys.exit(1)


# --- data -------------------------------------------------------------------------------------
def seed():
    """A user with an API token and one character whose training is in flight, as the runner
    leaves it after a few polls: the job RUNNING, its fal call RUNNING at step 630/1500."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from characters.models import Character
    from characters.training import TRAINING
    from webtoon.accounts.services import create_api_token
    from webtoon.jobs.models import CallState, Job, JobState, RemoteCall

    user = get_user_model().objects.create_user("bench")
    _, raw = create_api_token(user=user, name="bench")
    now = timezone.now()
    started = now - timedelta(minutes=5)
    character = Character.objects.create(
        owner=user,
        name="박사장",
        trigger_word="sks_parkboss",
        style_id="original",
        status="training",
        training_images_count=20,
        candidate_images_count=24,
        training_data=f"u/{user.pk}/training/bench.zip",
        training_data_url="https://v3.fal.media/files/bench/training.zip",
        training_data_backend="fal",
        training_started_at=started,
    )
    job = Job.objects.create(
        owner=user,
        kind=TRAINING.name,
        state=JobState.RUNNING,
        subject={"character": character.pk},
        progress=0.42,
        deadline_at=now + timedelta(seconds=settings.TRAINING_TIMEOUT_SECONDS),
        cost_estimated=TRAINING.unit_cost,
        started_at=started,
        last_checked_at=now - timedelta(minutes=1),
    )
    RemoteCall.objects.create(
        job=job,
        endpoint=settings.FAL_ENDPOINTS["trainer"],
        arguments={"images_data_url": character.training_data_url, "steps": 1500},
        output_kind="lora",
        backend="fal",
        state=CallState.RUNNING,
        request_id="bench-0001-7f3a9c",
        attempts=1,
        progress=0.42,
        current_step=630,
        total_steps=1500,
        logs_seen=2,
        last_log="Training: step 630/1500 loss=0.08",
        submitted_at=started,
        started_at=started,
        last_checked_at=now - timedelta(minutes=1),
    )
    Character.objects.filter(pk=character.pk).update(training_job=job)
    return raw, job


def count_queries(token: str, job) -> tuple[int, int, int]:
    from django.test import Client
    from django_q.models import OrmQ

    client = Client(headers={"authorization": f"Bearer {token}"})
    url = f"/api/character/training-status/{job.public_id}"
    before = OrmQ.objects.count()
    with QueryLog() as first:
        response = client.get(url)
    assert response.status_code == 200, (response.status_code, response.content)
    assert response.json()["status"] == "training", response.json()
    for _ in range(19):
        client.get(url)
    with QueryLog() as later:
        client.get(url)
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for sql in [*first.statements, "--", *later.statements]:
            print("   ", sql[:100])
    return len(first), len(later), OrmQ.objects.count() - before


def count_cold_queries(token: str, job) -> int:
    """The SQL of a status read that finds no cache entry (the token, the rows, the account
    state): what a lone poller pays when its reads are further apart than the caches last."""
    from django.core.cache import cache
    from django.test import Client

    client = Client(headers={"authorization": f"Bearer {token}"})
    cache.clear()
    with QueryLog() as cold:
        response = client.get(f"/api/character/training-status/{job.public_id}")
    assert response.status_code == 200, (response.status_code, response.content)
    return len(cold)


# --- server and load --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, env: dict[str, str]) -> subprocess.Popen:
    """The Procfile's server line (gthread, 2 workers, 4 threads), minus the access log."""
    cmd = [
        str(GUNICORN), "webtoon.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", "2", "--threads", "4",
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/ping", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError("gunicorn did not answer within 30 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # the arbiter stops its workers
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def worker_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of gunicorn's worker processes so far (the database server's own CPU,
    PostgreSQL's, is not included; SQLite runs inside the workers and is)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def check(url: str, token: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "training" and body["progress_percent"] == 42, body


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url: str, token: str, args: argparse.Namespace) -> dict:
    cmd = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
        "-H", f"Authorization: Bearer {token}", url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency in wrk output:\n{out}")
        return float(m[1]) * UNITS[m[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (rps and total):
        raise ValueError(f"unexpected wrk output:\n{out}")
    errors = int(non2xx[1]) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return {
        "rps": float(rps[1]),
        "requests": int(total[1]),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": errors,
    }


if __name__ == "__main__":
    main()
