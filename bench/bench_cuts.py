"""Benchmark: 24 cuts through the job engine against the fal HTTP fake.

Every fal request takes a fixed time (default 2 s) once it leaves the queue. A sequential
client would need 24 x that; the engine submits all cuts at once and polls them together,
so the wall time should stay close to one call. Prints the 24-cut wall time against a
one-cut job through the same path in the same run (the baseline: upload, submit, poll,
download, store) and against the fake's bare run time.

    make bench            # or: .venv/bin/python bench/bench_cuts.py --delay 2 --cuts 24
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=2.0, help="seconds one fal call runs")
    parser.add_argument("--cuts", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=0, help="fal account limit (0: none)")
    parser.add_argument(
        "--timeline", action="store_true", help="when the calls were submitted, ran, finished"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile of the runner thread")
    parser.add_argument("--repeat", type=int, default=3, help="sets measured (median)")
    args = parser.parse_args()

    os.environ["WEBTOON_DATA_DIR"] = tempfile.mkdtemp(prefix="webtoon-bench-")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "webtoon.settings"
    os.environ["FAL_KEY"] = "bench-key"
    os.environ["JOB_POLL_INTERVAL"] = "0.25"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.utils import timezone

    from characters import generation
    from characters.models import Photo
    from webtoon.jobs import services
    from webtoon.testing.fal_fake import FalFake

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    data = (ROOT / "tests" / "testdata" / "astronaut.png").read_bytes()
    from django.conf import settings

    def one_set(count: int, profiler=None):
        """One photo, `count` cuts, the real step-3 path: cut rows, one job, Kontext
        arguments, the photo upload, the 1024x1024 normalisation of each result. (The
        quality checks are tasks of their own, queued for the worker, not in this time.)"""
        photo = Photo(
            owner=user, width=512, height=512, source_format="PNG", consent_at=timezone.now()
        )
        photo.image.save(f"u/{user.pk}/photos/bench.png", ContentFile(data))
        settings.GENERATION_CUTS_COUNT = count
        session = generation.select_style(
            owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
        )
        job = generation.start_generation(owner=user, session_id=session.public_id)
        begun = timezone.now()
        started = time.monotonic()
        if profiler:
            profiler.enable()
        state = services.run_job(job.pk)
        if profiler:
            profiler.disable()
        wall = time.monotonic() - started
        job.refresh_from_db()
        return job, state, wall, begun

    with FalFake(
        run_seconds=args.delay,
        queue_polls=0,
        running_polls=0,
        concurrency=args.concurrency or None,
        render=False,  # the fake's own drawing would be charged to us (same process)
    ):
        # A worker process runs many jobs: one warm-up set (imports, first connections),
        # not counted. Then one cut and the full set, alternating, `--repeat` times.
        one_set(1)
        singles, fulls = [], []
        profiler = cProfile.Profile() if args.profile else None
        for _ in range(args.repeat):
            singles.append(one_set(1)[2])
            job, state, wall, begun = one_set(args.cuts, profiler)
            fulls.append(wall)
    single, wall = statistics.median(singles), statistics.median(fulls)
    ok = job.calls.filter(state="succeeded").count()
    print(f"cuts={args.cuts} delay={args.delay:.2f}s concurrency={args.concurrency or 'unlimited'}")
    print(f"state={state} succeeded={ok}/{args.cuts} (last set)")
    print(
        f"median of {args.repeat}: {args.cuts} cuts {wall:.2f}s, one cut through the same path "
        f"{single:.2f}s; fal's own run time {args.delay:.2f}s"
    )
    print(
        f"wall/one-cut-job={wall / single:.2f}x  wall/single-call={wall / args.delay:.2f}x  "
        f"(sequential would be {args.cuts:.0f}x)"
    )
    if args.timeline:
        calls = list(job.calls.all())

        def span(field: str) -> str:
            at = [(getattr(c, field) - begun).total_seconds() for c in calls if getattr(c, field)]
            return f"{min(at):.2f}-{max(at):.2f}s" if at else "-"

        print(
            f"timeline of the last set from run_job's start: submitted {span('submitted_at')}, "
            f"started {span('started_at')}, finished {span('finished_at')}, job finished "
            f"{(job.finished_at - begun).total_seconds():.2f}s"
        )
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
