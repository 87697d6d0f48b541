"""Benchmark: the pages' polls under load, each against the bare /bench/ping view in one run.

The polls an open page makes (issue 19), for one user while work is in flight:
  training-status    GET /api/character/training-status/<task>  (API token; bench_status's data)
  generation-status  GET /api/character/generation-status/<task> (API token; 24 cuts, 12 done)
  curation-poll      the curation grid's htmx poll, every 2 s   (session cookie)
  card-poll          a My Characters card while training, every 5 s (session cookie)
  badge              the notification badge in the nav, every 30 s (session cookie, 3 unread)
Each is loaded with wrk against gunicorn (the Procfile's gthread, 2 workers x 4 threads, as
bench_status.py) alternately with /bench/ping; printed: requests/s, p99, the server's CPU per
request, the ratios to ping, and the SQL statements of one poll (in-process, warm).

    .venv/bin/python bench/bench_polls.py --db both --duration 10
    .venv/bin/python bench/bench_polls.py --db both --redis redis://127.0.0.1:6379/9
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
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
from bench.bench_status import (  # noqa: E402
    free_port,
    parse_wrk,
    seed,
    start_gunicorn,
    stop,
    worker_cpu_seconds,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_arguments(parser)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeat", type=int, default=1, help="wrk runs per endpoint")
    parser.add_argument("--only", default="", help="comma-separated poll names")
    parser.add_argument(
        "--redis",
        default="",
        help="REDIS_URL for the cache, sessions and broker, as deployed with several workers "
        "(an empty Redis database of its own, e.g. redis://127.0.0.1:6379/9; emptied after)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian package)")
    if args.child_db is None:
        sys.exit(run_children(__file__, args.db, passthrough_args(sys.argv[1:])))
    with bench_environment(args.child_db, "polls", settings_module="bench.settings") as env:
        if not args.redis:
            run(args, env)
            return
        import redis

        server = redis.Redis.from_url(args.redis)
        if server.dbsize():
            sys.exit(f"{args.redis} is not empty: give the bench a Redis database of its own")
        os.environ["REDIS_URL"] = env["REDIS_URL"] = args.redis
        try:
            run(args, env)
        finally:
            server.flushdb()  # its sessions, cached rows and queued tasks


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    setup_django()
    print(f"machine: {machine_note()}; database: {db_label()}")
    from django.conf import settings

    print(f"cache: {settings.CACHES['default']['BACKEND']}; sessions: {settings.SESSION_ENGINE}")
    token, job = seed()
    endpoints = poll_endpoints(token, job, seed_polls(), args.only)
    queries = {name: count_queries(path, headers) for name, (path, headers) in endpoints.items()}

    port = free_port()
    server = start_gunicorn(port, env)
    results: dict[str, list[dict]] = {name: [] for name in endpoints}
    try:
        for i in range(args.repeat):
            for name in endpoints:
                if name == "ping":
                    continue
                for each in ("ping", name) if i % 2 == 0 else (name, "ping"):
                    p, h = endpoints[each]
                    cpu_before = worker_cpu_seconds(server)
                    result = wrk(f"http://127.0.0.1:{port}{p}", h, args)
                    result["cpu_ms"] = (worker_cpu_seconds(server) - cpu_before) / max(
                        result["requests"], 1
                    ) * 1000
                    results[each].append(result)
                    print(
                        f"  run {i + 1} {each:<18} {result['rps']:7.0f} req/s  p99 "
                        f"{result['p99_ms']:7.2f} ms  CPU {result['cpu_ms']:5.2f} ms/request "
                        f"({result['requests']} requests, {result['errors']} errors/non-2xx)",
                        flush=True,
                    )
    finally:
        stop(server)

    summary = {
        name: {
            "rps": median([r["rps"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]),
            "cpu_ms": median([r["cpu_ms"] for r in runs]),
            "queries": queries[name],
        }
        for name, runs in results.items()
    }
    ping = summary["ping"]
    print(
        f"\ngunicorn gthread 2 workers x 4 threads; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, median of {args.repeat} (ping: of every ping run)"
    )
    # On this machine kind the bare view alternates between about 1,300 and 3,800 req/s from
    # one run to the next (the polls do not): the range says which the median stands for.
    pings = [r["rps"] for r in results["ping"]]
    print(f"ping runs: {min(pings):.0f}-{max(pings):.0f} req/s over {len(pings)} runs")
    print(
        f"{'poll':<20}{'req/s':>8}{'vs ping':>9}{'p99 ms':>9}{'CPU ms':>8}{'CPU/ping':>10}"
        f"{'queries':>9}"
    )
    for name, s in summary.items():
        print(
            f"{name:<20}{s['rps']:>8.0f}{s['rps'] / ping['rps']:>8.2f}x{s['p99_ms']:>9.1f}"
            f"{s['cpu_ms']:>8.2f}{s['cpu_ms'] / ping['cpu_ms']:>9.1f}x{s['queries']:>9}"
        )
    print("JSON " + json.dumps(summary))
    if any(r["errors"] for runs in results.values() for r in runs):
        sys.exit(1)


def wrk(url: str, headers: dict, args) -> dict:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    for key, value in headers.items():
        name = key.removeprefix("HTTP_").replace("_", "-").title()
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def count_queries(path: str, headers: dict) -> int:
    """The SQL of one poll after a few warm ones (caches as a steady poller finds them)."""
    from django.test import Client

    client = Client(**headers)
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
    with QueryLog() as log:
        client.get(path)
    return len(log)


# --- data -------------------------------------------------------------------------------------
def poll_endpoints(token, job, polls: dict, only: str = "") -> dict[str, tuple[str, dict]]:
    """The bare view, the training-status read and the page polls; `only` (comma list)
    keeps those named, the bare view always."""
    endpoints = {
        "ping": ("/bench/ping", {}),
        "training-status": (
            f"/api/character/training-status/{job.public_id}",
            {"HTTP_AUTHORIZATION": f"Bearer {token}"},
        ),
        **polls,
    }
    if only:
        wanted = {"ping", *only.split(",")}
        endpoints = {k: v for k, v in endpoints.items() if k in wanted}
    return endpoints


def seed_polls() -> dict[str, tuple[str, dict]]:
    """For bench_status's user: a cut set in flight (24 cuts, 12 with their image and quality
    check, the job RUNNING and looked at just now), a training character (its card), three
    unread notifications, a logged-in session and an API token."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.test import Client
    from django.utils import timezone

    from characters import generation
    from characters.models import Character, Cut, Photo
    from webtoon.accounts.services import create_api_token
    from webtoon.jobs.models import CallState, Job, JobState
    from webtoon.notifications.services import notify

    user = get_user_model().objects.get(username="bench")
    _, raw = create_api_token(user=user, name="polls")
    jpeg = _jpeg()
    photo = Photo(owner=user, width=512, height=512, source_format="JPEG", face_detected=True)
    photo.consent_at = timezone.now()
    photo.image.save(f"u/{user.pk}/photos/bench.jpg", ContentFile(jpeg), save=False)
    photo.save()
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    job = generation.start_generation(owner=user, session_id=session.public_id)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, started_at=now, last_checked_at=now + timezone.timedelta(hours=1)
    )
    for cut in Cut.objects.filter(session=session).select_related("call"):
        if cut.number <= 12:
            name = f"u/{user.pk}/cuts/bench-{cut.number}.jpg"
            name = default_storage.save(name, ContentFile(jpeg))
            Cut.objects.filter(pk=cut.pk).update(image=name, quality_ok=True, similarity=0.3)
            cut.call.state = CallState.SUCCEEDED
            cut.call.finished_at = now - timezone.timedelta(minutes=5)
        else:
            cut.call.state = CallState.RUNNING
        cut.call.save()
    for i in range(3):
        notify(user, kind="training_completed", message=f"알림 {i}", link="/characters/")
    training = Character.objects.filter(owner=user, status="training").first()

    client = Client()
    client.force_login(user)
    sid = client.cookies[settings.SESSION_COOKIE_NAME].value
    htmx = {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={sid}", "HTTP_HX_REQUEST": "true"}
    # The page's poller carries the cells it shows; a steady poll sends none back.
    page = client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    known = re.search(r'/poll/\?known=([^"&]+)', page)[1]
    return {
        "generation-status": (
            f"/api/character/generation-status/{job.public_id}",
            {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
        ),
        "curation-poll": (f"/characters/sessions/{session.public_id}/poll/?known={known}", htmx),
        "card-poll": (f"/characters/{training.public_id}/card/", htmx),
        "badge": ("/notifications/badge/", htmx),
    }


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 170, 150)).save(buf, "JPEG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
