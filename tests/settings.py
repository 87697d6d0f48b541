"""Test settings: the real settings, with the queue run inline and files in a temp folder."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("FAL_KEY", "")

from webtoon.settings import *  # noqa: E402,F403
from webtoon.settings import Q_CLUSTER  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="webtoon-test-"))
MEDIA_ROOT = _TMP / "media"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/media/"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WEBTOON_OFFLINE_DIR = _TMP / "offline"
WEBTOON_BACKEND = "offline"
WEBTOON_OFFLINE_IMAGE_SECONDS = 0.05
WEBTOON_OFFLINE_TRAINING_SECONDS = 0.5
FAL_KEY = "test-fal-key"
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
JOB_POLL_INTERVAL = 0.01
# Tests read a status right after changing its rows; tests/characters/test_status_cache.py
# turns the one-second reuse on.
STATUS_CACHE_SECONDS = 0
JOB_BACKOFF_BASE_SECONDS = 0.0
JOB_TASK_BUDGET_SECONDS = 30
LOGGING = {"version": 1, "disable_existing_loggers": False}
STATIC_ROOT = _TMP / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
# A file, not SQLite's shared in-memory database: the browser tests run the worker in a
# thread beside the live server, and only a file gives them real (WAL, busy-timeout) locking.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(_TMP / "test.sqlite3")}  # noqa: F405
LOCAL_BACKUP_PATH = _TMP / "characters"
# The suite starts many costly jobs for one user; tests/test_limits.py turns the limits on.
RATE_LIMIT_COSTLY = ""
DAILY_SPEND_CAP_USD = 0
# Likewise the site-wide cap and the free-action throttles (tests/test_abuse.py turns them on).
DAILY_SITE_SPEND_CAP_USD = 0
RATE_LIMIT_RESTORE = RATE_LIMIT_UPLOADS = RATE_LIMIT_EXPORTS = RATE_LIMIT_PREVIEWS = ""
SIGNUP_RATE_LIMIT = ""
SIGNUP_REQUIRE_EMAIL_VERIFICATION = False

# `make test` runs the suite in parallel (pytest-xdist, one process per core): each worker has
# its own temp folder and test database (above, and pytest-django's _gwN suffix), and on Redis
# a database number of its own, or one worker's cache.clear() (FLUSHDB) would empty the
# other's keys in the middle of a test.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _WORKER.startswith("gw"):  # noqa: F405
    _base, _, _db = REDIS_URL.rstrip("/").rpartition("/")  # noqa: F405
    if _db.isdigit() and _base.count("/") >= 2:
        REDIS_URL = f"{_base}/{(int(_db) + int(_WORKER[2:])) % 16}"
        Q_CLUSTER["redis"] = REDIS_URL
        CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL}}  # noqa: F405
