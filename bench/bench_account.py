"""Benchmark: N users × 24 cuts on one fal account of 2 slots, FIFO at fal vs our fair queue.

fal runs 2 requests at a time on a new account and queues the rest first in, first out. With
FAL_ACCOUNT_CONCURRENCY=0 (fifo) every job submits all its cuts at once, so the second user
waits behind the first user's whole set. With FAL_ACCOUNT_CONCURRENCY=2 (fair) the rest wait
in our own queue and slots go round robin by user. Users start `--stagger` seconds apart;
one fal call runs `--delay` seconds. Printed per user: seconds from their start to their
first finished cut and to their last, in units of one call.

    .venv/bin/python bench/bench_account.py --users 3 --cuts 24 --delay 0.5
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(mode: str, args) -> list[tuple[float, float]]:
    """Each user's job gets a worker thread of its own that runs it as django-q would: a
    runner pass loop (run_job), started again at once when the job is woken."""
    import threading

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from webtoon.jobs import services
    from webtoon.jobs.models import Job, RemoteCall
    from webtoon.jobs.services import CallSpec
    from webtoon.testing.fal_fake import FalFake

    settings.FAL_ACCOUNT_CONCURRENCY = 2 if mode == "fair" else 0
    users = [get_user_model().objects.create_user(f"{mode}-{i}") for i in range(args.users)]
    wake = {}
    services.async_task = lambda task, job_id, *a, **k: wake.get(job_id, threading.Event()).set()

    def worker(job_id: int) -> None:
        try:
            while not Job.objects.get(pk=job_id).is_terminal:
                wake[job_id].clear()
                if services.run_job(job_id) in ("held", "busy"):
                    wake[job_id].wait(timeout=1.0)  # a freed slot wakes it; else the reconciler
        finally:
            connection.close()

    jobs = []
    threads = []
    with FalFake(
        run_seconds=args.delay, queue_polls=0, running_polls=0, concurrency=2, render=False
    ) as fake:
        for i, user in enumerate(users):
            calls = [
                CallSpec(
                    settings.FAL_ENDPOINTS["lora"],
                    {"prompt": f"user {i} cut {n}", "image_size": "square"},
                    slot=n,
                )
                for n in range(args.cuts)
            ]
            job = services.create_job(owner=user, kind="image", calls=calls, start=False)
            wake[job.pk] = threading.Event()
            thread = threading.Thread(target=worker, args=(job.pk,))
            thread.start()
            jobs.append(job)
            threads.append(thread)
            time.sleep(args.stagger)
        for thread in threads:
            thread.join()
    if os.environ.get("BENCH_TRACE"):
        print(mode, " ".join(r.arguments["prompt"].split()[1] for r in fake.submissions))
    out = []
    for job in jobs:
        done = sorted(
            c.finished_at for c in RemoteCall.objects.filter(job=job, state="succeeded")
        )
        first = (done[0] - job.created_at).total_seconds()
        last = (done[-1] - job.created_at).total_seconds()
        out.append((first, last))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--cuts", type=int, default=24)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds one fal call runs")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between users")
    args = parser.parse_args()

    os.environ["WEBTOON_DATA_DIR"] = tempfile.mkdtemp(prefix="webtoon-bench-account-")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "webtoon.settings"
    os.environ["FAL_KEY"] = "bench-key"
    os.environ["WEBTOON_BACKEND"] = "fal"
    os.environ["JOB_POLL_INTERVAL"] = "0.05"
    os.environ["RATE_LIMIT_COSTLY"] = ""
    os.environ["DAILY_SPEND_CAP_USD"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(
        f"users={args.users} cuts={args.cuts} delay={args.delay}s stagger={args.stagger}s "
        f"slots=2 (times in units of one call)"
    )
    results = {mode: run(mode, args) for mode in ("fifo", "fair")}
    head = f"{'fifo first':>10} {'fifo last':>10} | {'fair first':>10} {'fair last':>10}"
    print(f"{'user':>4} | {head}")
    for i in range(args.users):
        (ff, fl), (af, al) = results["fifo"][i], results["fair"][i]
        d = args.delay
        print(f"{i + 1:>4} | {ff / d:>10.1f} {fl / d:>10.1f} | {af / d:>10.1f} {al / d:>10.1f}")
    worst = {m: max(f for f, _ in r) / args.delay for m, r in results.items()}
    end = {m: max(last for _, last in r) / args.delay for m, r in results.items()}
    print(
        f"worst first-cut wait: fifo {worst['fifo']:.1f} calls, fair {worst['fair']:.1f} calls; "
        f"all done: fifo {end['fifo']:.1f}, fair {end['fair']:.1f} calls after each start"
    )


if __name__ == "__main__":
    main()
