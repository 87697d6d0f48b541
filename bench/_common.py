"""Shared set-up for the benchmarks that need a database of their own.

Each database kind runs in a child process (Django is set up once per process): SQLite in a
temp WEBTOON_DATA_DIR, or a PostgreSQL database created for the run and dropped after it
(BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432; never the `test` databases the
test suites use). The parent runs `<script> --child-db <kind> ...` once per kind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_BASE = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB_KINDS = ("sqlite", "postgres")


def add_db_arguments(parser) -> None:
    parser.add_argument(
        "--db", choices=(*DB_KINDS, "both"), default="both", help="database(s) to run on"
    )
    parser.add_argument("--child-db", choices=DB_KINDS, help=argparse.SUPPRESS)


def run_children(script: str, db: str, argv: list[str]) -> int:
    """Run this script once per database kind, each in a fresh process; the worst exit code."""
    worst = 0
    for kind in DB_KINDS if db == "both" else (db,):
        print(f"\n=== {kind} ===", flush=True)
        if kind == "postgres" and (problem := pg_unavailable()):
            print(f"skipped: no PostgreSQL at {PG_BASE} ({problem}); set BENCH_PG_URL")
            worst = max(worst, 1 if db == "postgres" else 0)
            continue
        cmd = [sys.executable, script, "--child-db", kind, *argv]
        worst = max(worst, subprocess.run(cmd, cwd=ROOT).returncode)
    return worst


def passthrough_args(argv: list[str]) -> list[str]:
    """The command line without --db (the parent's choice), for the children."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--db":
            skip = True
            continue
        if arg.startswith("--db="):
            continue
        out.append(arg)
    return out


@contextlib.contextmanager
def bench_environment(
    kind: str, name: str, *, settings_module: str = "webtoon.settings"
) -> Iterator[dict[str, str]]:
    """Environment for a benchmark child: a temp data folder, the ORM broker (no Redis), the
    fal backend with a dummy key (the fal fake answers), and SQLite or a fresh PostgreSQL
    database. Both are removed on the way out."""
    data_dir = tempfile.mkdtemp(prefix=f"webtoon-bench-{name}-")
    env = {
        "WEBTOON_DATA_DIR": data_dir,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "FAL_KEY": "bench-key",
        "WEBTOON_BACKEND": "fal",
        "LOG_LEVEL": "WARNING",
    }
    for var in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "AWS_STORAGE_BUCKET_NAME"):
        os.environ.pop(var, None)
    db_name = None
    if kind == "postgres":
        db_name = f"bench_webtoon_{name}_{os.getpid()}"
        create_pg_database(db_name)
        env["DATABASE_URL"] = f"{PG_BASE}/{db_name}"
    os.environ.update(env)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if db_name:
            drop_pg_database(db_name)
        shutil.rmtree(data_dir, ignore_errors=True)


def pg_unavailable() -> str | None:
    try:
        with _maintenance():
            return None
    except Exception as exc:  # psycopg missing, server down, auth refused
        return f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0][:120]}"


def _maintenance():
    import psycopg

    return psycopg.connect(f"{PG_BASE}/postgres", autocommit=True)


def create_pg_database(name: str) -> None:
    assert name.startswith("bench_webtoon_"), name  # never anybody else's database
    with _maintenance() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database(name: str) -> None:
    assert name.startswith("bench_webtoon_"), name
    with _maintenance() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django() -> None:
    """django.setup() and migrate, quietly (the queue's per-task INFO lines off)."""
    import logging

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("django-q").setLevel(logging.WARNING)


def db_label() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (WAL, file in a temp folder)"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"PostgreSQL {version} on 127.0.0.1 (CONN_MAX_AGE=60)"


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load[0]:.2f} at start, "
        f"Python {platform.python_version()}"
    )


def median(values) -> float:
    return statistics.median(values)


class QueryLog:
    """Every SQL statement run on the default connection inside the block.

    An execute_wrapper, not CaptureQueriesContext: Django's request_started signal resets
    connection.queries_log, so a capture around a test-Client request can miscount, and the
    wrapper also sees statements run after the connection was closed and reopened."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryLog:
        from django.db import connection

        self._cm = connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)

    def __len__(self) -> int:
        return len(self.statements)
