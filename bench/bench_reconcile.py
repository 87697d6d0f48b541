"""Benchmark: the periodic reconciler over 1,000 trainings in flight, and the sweep it starts.

1,000 users each have a character whose training is in flight as the engine leaves it
between passes: the Job RUNNING with its lease run out and nobody looking for a minute, its
fal call RUNNING with a request id (plus --finished finished jobs the reconciler must skip).
The fal HTTP fake (webtoon/testing/fal_fake.py, render=False) knows every request id and
answers IN_PROGRESS with step logs: no training finishes during the run.

Measured, with the real ORM broker (django-q2, not sync):
  reconcile   one services.reconcile() pass (what the periodic task runs): wall time, SQL
              statements, database connections opened, run_job tasks enqueued;
  sweep       every enqueued task executed as a worker would (dequeue, run
              webtoon.jobs.tasks.run_job(job_id), acknowledge) in this one process: wall
              time, SQL statements per job pass (run_job alone, and the broker's share), fal
              requests by kind. Expected: one status poll per job, no submit, no result.
The worker's result bookkeeping (django-q's Success rows) is not part of it.

    make bench            # or: .venv/bin/python bench/bench_reconcile.py --db both --jobs 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
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

STEPS = 1500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_arguments(parser)
    parser.add_argument("--jobs", type=int, default=1000, help="trainings in flight")
    parser.add_argument("--finished", type=int, default=5000, help="finished jobs beside them")
    parser.add_argument(
        "--reconcile-only", action="store_true", help="measure the pass, skip the sweep"
    )
    args = parser.parse_args()
    if args.child_db is None:
        sys.exit(run_children(__file__, args.db, passthrough_args(sys.argv[1:])))
    with bench_environment(args.child_db, "reconcile"):
        run(args)


def run(args: argparse.Namespace) -> None:
    setup_django()
    from django.db.backends.signals import connection_created
    from django_q.models import OrmQ

    from webtoon.jobs import services
    from webtoon.jobs.models import CallState, Job, RemoteCall
    from webtoon.testing.fal_fake import FalFake

    print(f"machine: {machine_note()}; database: {db_label()}")
    started = time.monotonic()
    request_ids = seed(args.jobs, args.finished)
    print(
        f"setup: {args.jobs} trainings in flight (1 user each), {args.finished} finished jobs "
        f"({time.monotonic() - started:.1f}s)"
    )

    opened: list[int] = []

    def on_connect(**kwargs) -> None:
        opened.append(1)

    connection_created.connect(on_connect, weak=False)

    # --- one reconcile pass ---
    with QueryLog() as log:
        t = time.perf_counter()
        enqueued = services.reconcile()
        reconcile_s = time.perf_counter() - t
    reconcile_conns = len(opened)
    kinds = Counter(sql.split(None, 1)[0] for sql in log.statements)
    print(
        f"\nreconcile(): {reconcile_s:.2f}s, {enqueued} run_job tasks enqueued "
        f"({OrmQ.objects.count()} in the queue), {len(log)} SQL statements "
        f"({', '.join(f'{n} {k}' for k, n in kinds.most_common())}), "
        f"{reconcile_conns} database connections opened"
    )

    if args.reconcile_only:
        print("JSON " + json.dumps({
            "reconcile_s": reconcile_s, "enqueued": enqueued, "reconcile_queries": len(log),
            "reconcile_connections": reconcile_conns,
        }))  # fmt: skip
        sys.exit(0 if enqueued == args.jobs else 1)

    # --- the sweep: every enqueued task, as a worker runs it ---
    fake = FalFake(render=False, run_seconds=1e9, queue_polls=0, running_polls=0)
    register(fake, request_ids)
    opened.clear()
    per_job: list[int] = []
    job_seconds: list[float] = []
    outcomes: Counter[str] = Counter()
    with fake, QueryLog() as sweep_log:
        t = time.perf_counter()
        done = execute_queue(per_job, job_seconds, outcomes)
        sweep_s = time.perf_counter() - t
    sweep_conns = len(opened)
    broker_queries = len(sweep_log) - sum(per_job)
    polls = Counter(r.status_polls for r in fake.requests.values())
    ops = Counter(op for op, _ in fake.calls)
    running = RemoteCall.objects.filter(state=CallState.RUNNING, current_step__gt=0).count()
    leased = Job.objects.filter(locked_until__isnull=False, state="running").count()
    one_each = polls == Counter({1: args.jobs}) and not fake.submissions

    print(
        f"sweep: {done} tasks in {sweep_s:.1f}s ({sweep_s / max(done, 1) * 1000:.1f} ms a job; "
        f"run_job itself median {median(job_seconds) * 1000:.1f} ms), results {dict(outcomes)}"
    )
    print(
        f"  SQL per job pass: run_job median {median(per_job):.0f} "
        f"(min {min(per_job)}, max {max(per_job)}), broker (dequeue + acknowledge) "
        f"{broker_queries / max(done, 1):.1f}; {sweep_conns} database connections opened"
    )
    print(
        f"  fal requests: {dict(ops)}; status polls per request: {dict(polls)}; "
        f"submits {len(fake.submissions)}"
    )
    print(
        f"  exactly one fal status call per job, no resubmission: {'yes' if one_each else 'NO'}; "
        f"calls still RUNNING with steps {running}/{args.jobs}; leases left held {leased}"
    )
    build_ms, poll_ms = components(request_ids[:20])
    print(
        f"  parts of a pass: get_backend('fal') (a new fal SyncClient: httpx client + SSL "
        f"context) median {build_ms:.1f} ms; one status poll through a reused client "
        f"{poll_ms:.1f} ms"
    )
    print("JSON " + json.dumps({
        "reconcile_s": reconcile_s, "enqueued": enqueued, "reconcile_queries": len(log),
        "reconcile_connections": reconcile_conns, "sweep_s": sweep_s, "tasks": done,
        "run_job_queries_median": median(per_job), "broker_queries_per_job":
        broker_queries / max(done, 1), "sweep_connections": sweep_conns,
        "fal": dict(ops), "one_status_per_job": one_each, "get_backend_ms": build_ms,
        "status_poll_ms": poll_ms,
    }))  # fmt: skip
    if not one_each or enqueued != args.jobs or done != args.jobs:
        sys.exit(1)


def execute_queue(per_job: list[int], job_seconds: list[float], outcomes: Counter) -> int:
    """Drain the ORM queue the way a django-q worker does: dequeue, unsign, call, ack."""
    from django.utils.module_loading import import_string
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    done = 0
    while tasks := broker.dequeue():
        for ack_id, payload in tasks:
            task = SignedPackage.loads(payload)
            func = import_string(task["func"])
            with QueryLog() as log:
                t = time.perf_counter()
                outcomes[str(func(*task["args"], **task["kwargs"]))] += 1
                job_seconds.append(time.perf_counter() - t)
            per_job.append(len(log))
            broker.acknowledge(ack_id)
            done += 1
    return done


def components(request_ids: list[str]) -> tuple[float, float]:
    """Two parts of a job pass timed alone: making the backend (each pass makes its own) and
    one status request through an existing one (against a fresh fake)."""
    from django.conf import settings

    from webtoon.imaging import get_backend
    from webtoon.testing.fal_fake import FalFake

    fake = FalFake(render=False, run_seconds=1e9, queue_polls=0, running_polls=0)
    register(fake, request_ids)
    endpoint = settings.FAL_ENDPOINTS["trainer"]
    builds, polls = [], []
    with fake:
        for _ in request_ids:
            t = time.perf_counter()
            backend = get_backend("fal")
            backend.client._client  # noqa: B018 (fal-client builds its httpx client lazily)
            builds.append(time.perf_counter() - t)
        backend.status(endpoint, request_ids[0])
        for rid in request_ids:
            t = time.perf_counter()
            backend.status(endpoint, rid)
            polls.append(time.perf_counter() - t)
    return median(builds) * 1000, median(polls) * 1000


# --- data -------------------------------------------------------------------------------------
def seed(n: int, finished: int) -> list[str]:
    """n users, each with one training in flight; returns the fal request ids."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from characters.models import Character
    from characters.training import SAMPLES, TRAINING
    from webtoon.jobs.models import CallState, Job, JobState, RemoteCall

    User = get_user_model()
    now = timezone.now()
    long_ago = now - timedelta(minutes=10)
    users = User.objects.bulk_create(User(username=f"bench{i:05d}") for i in range(n))
    characters = Character.objects.bulk_create(
        Character(
            owner=u,
            name=f"캐릭터 {i}",
            trigger_word=f"sks_bench{i:05d}",
            style_id="original",
            status="training",
            training_images_count=20,
            candidate_images_count=24,
            training_data=f"u/{u.pk}/training/t.zip",
            training_data_url="https://v3.fal.media/files/bench/training.zip",
            training_data_backend="fal",
            training_started_at=long_ago,
        )
        for i, u in enumerate(users)
    )
    jobs = Job.objects.bulk_create(
        Job(
            owner_id=c.owner_id,
            kind=TRAINING.name,
            state=JobState.RUNNING,
            subject={"character": c.pk},
            progress=0.2,
            deadline_at=now + timedelta(seconds=settings.TRAINING_TIMEOUT_SECONDS),
            cost_estimated=TRAINING.unit_cost,
            started_at=long_ago,
            # the last runner's lease ran out and nobody has looked since
            locked_until=now - timedelta(minutes=1),
            last_checked_at=now - timedelta(minutes=1),
        )
        for c in characters
    )
    request_ids = [f"bench-{i:05d}-{j.pk:06d}" for i, j in enumerate(jobs)]
    RemoteCall.objects.bulk_create(
        RemoteCall(
            job=job,
            endpoint=settings.FAL_ENDPOINTS["trainer"],
            arguments={"images_data_url": "https://v3.fal.media/files/bench/t.zip", "steps": STEPS},
            output_kind="lora",
            backend="fal",
            state=CallState.RUNNING,
            request_id=rid,
            attempts=1,
            progress=0.2,
            current_step=300,
            total_steps=STEPS,
            logs_seen=2,
            last_log=f"Training: step 300/{STEPS} loss=0.08",
            submitted_at=long_ago,
            started_at=long_ago,
            last_checked_at=now - timedelta(minutes=1),
        )
        for job, rid in zip(jobs, request_ids, strict=True)
    )
    for c, job in zip(characters, jobs, strict=True):
        c.training_job = job
    Character.objects.bulk_update(characters, ["training_job"], batch_size=500)
    # History the reconciler must skip: finished trainings and test images.
    Job.objects.bulk_create(
        (
            Job(
                owner=users[i % n],
                kind=(TRAINING if i % 4 == 0 else SAMPLES).name,
                state=JobState.SUCCEEDED if i % 10 else JobState.FAILED,
                progress=1.0,
                created_at=long_ago - timedelta(hours=i % 500),
                finished_at=long_ago,
            )
            for i in range(finished)
        ),
        batch_size=1000,
    )
    return request_ids


def register(fake, request_ids: list[str]) -> None:
    """Tell the fal fake about requests submitted before this run, already IN_PROGRESS."""
    from django.conf import settings

    from webtoon.testing.fal_fake import FakeRequest

    started = time.monotonic() - 600
    endpoint = settings.FAL_ENDPOINTS["trainer"]
    for rid in request_ids:
        fake.requests[rid] = FakeRequest(
            request_id=rid,
            endpoint=endpoint,
            arguments={"steps": STEPS},
            submitted_at=started,
            headers={},
            started_at=started,
        )


if __name__ == "__main__":
    main()
