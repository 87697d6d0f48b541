"""`make soak`: N simulated users through the whole flow at once, with faults everywhere.

Starts, on loopback only: the fal fake server (random latency, 5xx, timeouts, lost submit
answers), gunicorn (2 gthread workers) and two `qcluster` processes, on PostgreSQL + Redis
(default) or the embedded SQLite + ORM broker (`--db sqlite`). While the users run, one
qcluster is killed with SIGKILL (with its worker children) every few seconds and started
again. When every flow has ended and the system has settled, it checks and prints:

- every flow finished or failed with a recorded cause;
- no job stuck;
- no paid fal call submitted twice for the same work;
- every stored file referenced by a row, every row's file present;
- the per-user training limit never exceeded.

Exit status 0 only when every check passes. Bounded: --deadline seconds in all.

`--cluster` (`make soak-cluster`) is the multi-machine layout on one host: media on a real S3
server (SeaweedFS, `weed server -s3`) instead of a local folder, and two gunicorn processes
(two web machines) with the users split between them; PostgreSQL + Redis as above. The file
check then lists the bucket: every object referenced by a row, every row's object there.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
PHOTOS = [ROOT / "tests/testdata/astronaut.png", ROOT / "tests/testdata/grace_hopper.jpg"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S', time.gmtime())}Z] {message}", flush=True)


class Processes:
    """The services under test, each in its own process group so a kill takes its children."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            argv,
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {seconds:.0f} s")


def fresh_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description="Soak the whole flow under faults.")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/webtoon_soak")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument(
        "--kill-every", type=float, default=8.0, help="seconds between qcluster kills"
    )
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--timeout-rate", type=float, default=0.01)
    parser.add_argument("--training-seconds", type=float, default=20.0)
    parser.add_argument(
        "--account-slots",
        type=int,
        default=0,
        help="fal account of N slots (the fake queues the rest, FIFO) and "
        "FAL_ACCOUNT_CONCURRENCY=N in the product; 0: unlimited",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="WEBTOON_PUBLIC_URL set: every submit names its call in fal's webhook URL and the "
        "fake POSTs signed webhooks when requests finish (lost submit answers get adopted)",
    )
    parser.add_argument("--deadline", type=float, default=1500.0, help="whole run, seconds")
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to settle after")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument(
        "--cluster", action="store_true", help="media on SeaweedFS S3, two gunicorn processes"
    )
    args = parser.parse_args()
    if args.cluster and args.db != "postgres":
        parser.error("--cluster runs on PostgreSQL + Redis")
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    started = time.monotonic()

    data = Path(tempfile.mkdtemp(prefix="webtoon-soak-"))
    (data / "logs").mkdir()
    (data / "tmp").mkdir()
    fake_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "soak.settings",
        "WEBTOON_DATA_DIR": str(data),
        "TMPDIR": str(data / "tmp"),
        "FAL_KEY": "soak-fal-key",
        "WEBTOON_BACKEND": "fal",
        "WEBTOON_FAL_FAKE_URL": f"http://127.0.0.1:{fake_port}",
        "JOB_LEASE_SECONDS": "15",
        "Q_WORKERS": "2",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "FAL_ACCOUNT_CONCURRENCY": str(args.account_slots),
        "WEBTOON_PUBLIC_URL": f"http://127.0.0.1:{web_port}" if args.webhooks else "",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if args.db == "postgres":
        fresh_postgres(args.database_url)
        env["DATABASE_URL"] = args.database_url
        env["REDIS_URL"] = args.redis_url
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    s3 = None
    if args.cluster:
        from webtoon.testing.seaweed import SeaweedS3

        s3 = SeaweedS3(data / "s3").start()
        env.update(s3.env(s3.create_bucket("webtoon-soak")))
        log(f"media on SeaweedFS S3 at {s3.endpoint}, bucket webtoon-soak")
    os.environ.update(env)
    log(
        f"seed {seed}; {args.users} users on {args.db} "
        f"({'Redis' if args.db == 'postgres' else 'ORM'} broker); data in {data}"
    )

    procs = Processes(env, data / "logs")

    def interrupted(*_):
        procs.stop_all()  # then leave at once: the user threads must not outlive the services
        if s3 is not None:
            s3.stop()
        os._exit(143)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        return soak(args, env, data, procs, rng, seed, started, fake_port, web_port)
    finally:
        procs.stop_all()
        if s3 is not None:
            s3.stop()


def soak(args, env, data, procs, rng, seed, started, fake_port, web_port) -> int:
    procs.start(
        "fal-fake",
        [
            PYTHON,
            "-m",
            "webtoon.testing.fal_server",
            "--port",
            str(fake_port),
            "--error-rate",
            str(args.error_rate),
            "--timeout-rate",
            str(args.timeout_rate),
            "--training-seconds",
            str(args.training_seconds),
            "--slots",
            str(args.account_slots),
            *(["--webhooks"] if args.webhooks else []),
            "--seed",
            str(seed),
        ],
    )
    for command in (["migrate", "--noinput", "-v", "0"], ["init_schedules"]):
        subprocess.run(
            [PYTHON, "manage.py", *command],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from soak import checks
    from soak.flow import UserFlow
    from webtoon.accounts.services import create_api_token

    users = []
    for n in range(args.users):
        user = get_user_model().objects.create_user(f"soak{n:02d}", f"soak{n:02d}@example.com")
        users.append((user.username, create_api_token(user=user, name="soak")[1]))

    # --cluster: a second gunicorn (a second web machine); users alternate between them.
    web_ports = [web_port, free_port()] if args.cluster else [web_port]
    for number, port in enumerate(web_ports):
        procs.start(
            "web" if number == 0 else f"web-{number + 1}",
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "webtoon.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "8",
                "--timeout",
                "120",
            ],
        )
    clusters = ["worker-a", "worker-b"]
    for name in clusters:
        procs.start(name, [PYTHON, "manage.py", "qcluster"])
    wait_http(f"http://127.0.0.1:{fake_port}/_fake/submissions")
    for port in web_ports:
        wait_http(f"http://127.0.0.1:{port}/accounts/login/")

    stop_killing = threading.Event()
    kills = {"qcluster": 0}

    def killer() -> None:
        """Every few seconds SIGKILL one of the two qclusters with all its children (the
        sentinel, its workers mid-task, monitor and pusher), as a crashed or redeployed
        machine would, and start it again a moment later."""
        while not stop_killing.wait(args.kill_every * rng.uniform(0.5, 1.5)):
            name = rng.choice(clusters)
            procs.kill(name)
            kills["qcluster"] += 1
            time.sleep(rng.uniform(0.5, 2.0))
            procs.start(name, [PYTHON, "manage.py", "qcluster"])

    chaos = threading.Thread(target=killer, name="killer", daemon=True)
    chaos.start()

    budget = max(60.0, args.deadline - args.settle - (time.monotonic() - started))

    def one(index: int):
        username, token = users[index]
        time.sleep(rng.uniform(0, 10))
        flow = UserFlow(
            f"http://127.0.0.1:{web_ports[index % len(web_ports)]}",
            username,
            token,
            PHOTOS[index % len(PHOTOS)],
            trainings=3 if index % 4 == 0 else 1,  # every 4th user meets the 2-at-once limit
            step_deadline=budget,
        )
        result = flow.run()
        log(
            f"{username}: {result.outcome} in {result.seconds:.0f} s"
            + (f" — {result.cause[:160]}" if result.cause else "")
        )
        return result

    try:
        with ThreadPoolExecutor(max_workers=args.users) as pool:
            results = list(pool.map(one, range(args.users)))
        stop_killing.set()
        chaos.join()
        log(f"flows over after {time.monotonic() - started:.0f} s; kills: {kills}; settling")
        settle(args.settle)
        submissions = httpx.get(f"http://127.0.0.1:{fake_port}/_fake/submissions").json()
        ok, text = checks.report(results, submissions, limit=settings.MAX_CONCURRENT_TRAINING)
    finally:
        stop_killing.set()
        procs.stop_all()
    print(text, flush=True)
    leaked = list((data / "tmp").iterdir())
    log(f"temp files left by killed workers: {len(leaked)}")
    log(
        f"{'PASS' if ok else 'FAIL'}: {args.users} users, kills: {kills}, "
        f"{len(submissions)} fal requests, {time.monotonic() - started:.0f} s (seed {seed})"
    )
    (data / "results.json").write_text(checks.dump(results))
    if ok and not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    else:
        log(f"data, logs and results kept in {data}")
    return 0 if ok else 1


def settle(seconds: float) -> None:
    """Wait until no job or cut check is in flight (the workers keep running), or time's up."""
    from soak.checks import unchecked_cuts, unfinished_jobs

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not unfinished_jobs().exists() and not unchecked_cuts().exists():
            return
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
