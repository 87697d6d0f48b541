"""Settings come from the environment: each case imports webtoon.settings in a fresh process.

Also: the configured django-q2 broker round-trips a task on the real service of this run,
and the default SQLite configuration survives two processes writing at once.
"""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
STRIPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "FAL_KEY",
    "WEBTOON_BACKEND",
    "AWS_STORAGE_BUCKET_NAME",
    "DJANGO_SETTINGS_MODULE",
    "MEDIA_ROOT",
)

PROBE = textwrap.dedent(
    """
    import json, os
    import django
    os.environ["DJANGO_SETTINGS_MODULE"] = "webtoon.settings"
    from django.conf import settings
    db = settings.DATABASES["default"]
    print(json.dumps({
        "engine": db["ENGINE"],
        "name": str(db["NAME"]),
        "options": db.get("OPTIONS", {}),
        "conn_max_age": db.get("CONN_MAX_AGE"),
        "q_cluster": {k: v for k, v in settings.Q_CLUSTER.items() if k in ("orm", "redis")},
        "cache": settings.CACHES["default"]["BACKEND"],
        "sessions": settings.SESSION_ENGINE,
        "backend": settings.WEBTOON_BACKEND,
        "storage": settings.STORAGES["default"]["BACKEND"],
        "storage_options": settings.STORAGES["default"]["OPTIONS"],
    }))
    """
)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    env["WEBTOON_DATA_DIR"] = str(tmp_path)
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def probe(tmp_path: Path, **extra: str) -> dict:
    proc = run_python(PROBE, clean_env(tmp_path, **extra))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- settings from the environment ------------------------------------------------------------
def test_settings_defaults_use_sqlite_wal_immediate(tmp_path):
    s = probe(tmp_path)

    assert s["engine"] == "django.db.backends.sqlite3"
    assert Path(s["name"]) == tmp_path / "webtoon.sqlite3"
    assert s["options"]["transaction_mode"] == "IMMEDIATE"
    assert "PRAGMA journal_mode=WAL" in s["options"]["init_command"]
    assert s["options"]["timeout"] >= 5


def test_settings_defaults_use_orm_broker_offline_backend_local_media(tmp_path):
    s = probe(tmp_path)

    assert s["q_cluster"] == {"orm": "default"}
    assert s["backend"] == "offline"
    assert s["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    # Not cached per process: a logout in one worker must end the session in all of them
    # (Django's database store; ours only writes its read once as SQL).
    assert s["sessions"] == "webtoon.sessions"
    assert s["storage"] == "django.core.files.storage.FileSystemStorage"
    assert Path(s["storage_options"]["location"]) == tmp_path / "media"


def test_settings_database_and_redis_urls_use_postgres_and_redis(tmp_path):
    s = probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert s["engine"] == "django.db.backends.postgresql"
    assert s["name"] == "test"
    assert "transaction_mode" not in s["options"]
    assert s["conn_max_age"] == 60
    assert s["q_cluster"] == {"redis": "redis://127.0.0.1:6379/0"}
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["sessions"] == "django.contrib.sessions.backends.cached_db"  # shared: safe


def test_settings_fal_key_selects_fal_backend(tmp_path):
    assert probe(tmp_path, FAL_KEY="x")["backend"] == "fal"


def test_settings_explicit_offline_wins_over_fal_key(tmp_path):
    assert probe(tmp_path, FAL_KEY="x", WEBTOON_BACKEND="offline")["backend"] == "offline"


def test_settings_bogus_backend_refuses_to_start(tmp_path):
    proc = run_python(PROBE, clean_env(tmp_path, WEBTOON_BACKEND="bogus"))

    assert proc.returncode != 0
    assert "WEBTOON_BACKEND must be 'fal' or 'offline'" in proc.stderr


def test_settings_bucket_name_selects_private_s3_storage(tmp_path):
    s = probe(tmp_path, AWS_STORAGE_BUCKET_NAME="webtoon-media")

    assert s["storage"] == "storages.backends.s3.S3Storage"
    assert s["storage_options"]["bucket_name"] == "webtoon-media"
    assert s["storage_options"]["default_acl"] == "private"
    assert s["storage_options"]["querystring_auth"] is True


# --- the task queue broker of this run --------------------------------------------------------
@pytest.mark.django_db
def test_broker_round_trips_a_task():
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    broker = get_broker(list_key=f"webtoon-test-{uuid.uuid4().hex}")
    assert isinstance(broker, Redis if settings.REDIS_URL else ORM)
    assert broker.ping()
    payload = f"payload-{uuid.uuid4().hex}"
    try:
        broker.enqueue(payload)
        assert broker.queue_size() == 1

        got = None
        for _ in range(20):  # the ORM broker only hands out tasks locked strictly before now
            got = broker.dequeue()
            if got:
                break
        assert got, "the broker never handed the task back"
        assert len(got) == 1
        task_id, message = got[0]
        if isinstance(message, bytes):
            message = message.decode()
        assert message == payload
        assert broker.queue_size() == 0
        broker.acknowledge(task_id)
        assert broker.dequeue() is None
    finally:
        broker.delete_queue()


# --- SQLite under two writers -----------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import os, sys, time
    os.environ["DJANGO_SETTINGS_MODULE"] = "webtoon.settings"
    import django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from webtoon.accounts.models import ApiToken
    from webtoon.accounts.services import create_api_token

    tag, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    user = get_user_model().objects.get(username="writer")
    time.sleep(max(0.0, start - time.time()))
    for i in range(count):
        # Read, then write, in one transaction: the pattern that deadlocks a DEFERRED
        # transaction ("database is locked") when another process writes in between.
        with transaction.atomic():
            seen = ApiToken.objects.filter(user=user).count()
            time.sleep(0.002)
            create_api_token(user=user, name=f"{tag}-{i}-{seen}")
    print("done", tag, count)
    """
)


def test_sqlite_two_processes_write_at_once_without_locking(tmp_path):
    """The default SQLite settings (WAL, IMMEDIATE, timeout) on a real file, not the in-memory
    test database: two processes each write 30 times at once and neither sees a lock error."""
    env = clean_env(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    make_user = run_python(
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'webtoon.settings'; "
        "django.setup(); from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_user('writer', password='pw-writer-123')",
        env,
    )
    assert make_user.returncode == 0, make_user.stderr

    start = time.time() + 3  # both processes are set up by then and begin together
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, tag, str(start), "30"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    results = [w.communicate(timeout=240) for w in writers]

    for writer, (out, err) in zip(writers, results, strict=True):
        assert "database is locked" not in err
        assert writer.returncode == 0, err
        assert out.startswith("done")
    db = sqlite3.connect(tmp_path / "webtoon.sqlite3")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [r[0] for r in db.execute("SELECT name FROM accounts_apitoken")]
    finally:
        db.close()
    assert len(names) == 60
    assert {n.split("-")[0] for n in names} == {"a", "b"}
