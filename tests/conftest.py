import io
import os
from pathlib import Path

import fal_client.client
import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from PIL import Image

from webtoon.testing.fal_fake import FalFake

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# inside one unless told that this is fine (it is: the loop is Playwright's, not ours).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# The second `make test` pass (PostgreSQL + Redis) runs only the tests whose outcome can
# depend on the database or cache kind (issue 19: the whole suite twice took 14 minutes):
# row locks and concurrent writers, the limits, claims and leases of the job engine, the
# account's admission under a lock, what PostgreSQL refuses (NUL), migrations, the soak's
# SQL checks, owner scoping, and the caches (Redis in that pass). Everything else is plain
# ORM and Python and runs once, on SQLite. A test may also say so itself:
# `@pytest.mark.dbkind`.
DBKIND_MODULES = {
    "tests.test_limits",
    "tests.test_engine",
    "tests.test_fal_reality",
    "tests.test_soak_checks",
    "tests.test_nul_input",
    "tests.test_text_input",
    "tests.test_operations",
    "tests.test_scoping",
    "tests.characters.test_status_cache",
    # The polls' reads written as SQL (JSON keys differ between the two databases).
    "tests.characters.test_poll_reads",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-django's own (tryfirst too, registered earlier)
def pytest_collection_modifyitems(config, items):
    # The long tests first: pytest-django then groups the tests by kind (plain, then
    # transactional and live_server) keeping this order inside each group, and xdist's
    # `--dist load` hands them out in that order. A long browser test handed out last kept
    # its worker busy half a minute after the others had finished (issue 19).
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    for item in items:
        postgres_only = any(
            "PostgreSQL" in str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif")
        )
        if postgres_only or item.module.__name__ in DBKIND_MODULES:
            item.add_marker(pytest.mark.dbkind)


# dlib's answers for a picture already seen in this process (issue 19: a 24-cut fixture spent
# 8 s in dlib, again in every test that used it). The fal fake draws the n-th request of a test
# the same way every time (webtoon/testing/fal_fake.py), so the same cut's pixels come back
# and dlib is asked once per distinct picture; a new picture still goes through dlib. Keyed by
# the pixels themselves: an answer is only ever reused for identical input. The modules that
# test dlib itself (models, lock, thresholds) always run it.
DLIB_MODULES = {"tests.characters.test_identity", "tests.characters.test_quality"}
_face_answers: dict = {}


def _pixels_key(name, image, *extra):
    import hashlib

    digest = hashlib.blake2b(image.tobytes(), digest_size=20).hexdigest()
    return (name, image.mode, image.size, digest, *extra)


@pytest.fixture(autouse=True)
def _shared_face_answers(request, monkeypatch):
    if request.node.module.__name__ in DLIB_MODULES:
        yield
        return
    from characters import identity

    real_embedding, real_find = identity.face_embedding, identity.find_faces

    def face_embedding(image):
        key = _pixels_key("embedding", image)
        if key not in _face_answers:
            _face_answers[key] = real_embedding(image)
        answer = _face_answers[key]
        return list(answer) if answer is not None else None

    def find_faces(image, *, limit=4):
        key = _pixels_key("faces", image, limit)
        if key not in _face_answers:
            _face_answers[key] = real_find(image, limit=limit)
        return list(_face_answers[key])  # FoundFace is frozen; its embedding is never mutated

    monkeypatch.setattr(identity, "face_embedding", face_embedding)
    monkeypatch.setattr(identity, "find_faces", find_faces)
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Debounce keys (refresh requests, cut rechecks) must not leak from one test to the next."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def fal(settings, monkeypatch):
    """The fal backend, talking HTTP to the fake (fal-client's own retries kept short)."""
    settings.WEBTOON_BACKEND = "fal"
    monkeypatch.setattr(fal_client.client, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(fal_client.client, "BASE_DELAY", 0.01, raising=False)
    monkeypatch.setattr(fal_client.client, "MAX_DELAY", 0.02, raising=False)
    with FalFake() as fake:
        yield fake


@pytest.fixture
def offline(settings):
    settings.WEBTOON_BACKEND = "offline"
    return settings


def jpeg_bytes(size=(640, 480), color=(200, 150, 100)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


# --- real browser (Debian chromium + Playwright) ----------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        if os.environ.get("WEBTOON_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and WEBTOON_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="ko-KR")
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()
            # Inside sync_playwright the test runs in its own context, with database
            # connections of its own: close them, or PostgreSQL refuses to drop the test DB.
            connections.close_all()


@pytest.fixture
def background_queue(monkeypatch):
    """django-q2 as a one-worker cluster in a thread: pages return at once and the worker
    catches up, the way `make run` behaves (the suite's queue is inline otherwise)."""
    import queue
    import threading

    from django.utils.module_loading import import_string

    tasks: queue.Queue = queue.Queue()

    def worker():
        while (item := tasks.get()) is not None:
            func, args = item
            try:
                (import_string(func) if isinstance(func, str) else func)(*args)
            except Exception:  # a failing task is the worker's problem, as in django-q
                import logging

                logging.getLogger(__name__).exception("background task failed")
            finally:
                connections.close_all()

    def async_task(func, *args, **kwargs):
        tasks.put((func, args))
        return "bg"

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    for module in ("webtoon.jobs.services", "characters.checks"):
        monkeypatch.setattr(f"{module}.async_task", async_task)
    yield tasks
    tasks.put(None)
    thread.join(timeout=30)


# --- media on a real S3 server (issue 18) -----------------------------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """SeaweedFS (`weed server -s3`) for the tests marked `storage`, when WEBTOON_TEST_S3=1
    (`make test-storage`, the suite's third pass); None otherwise."""
    if os.environ.get("WEBTOON_TEST_S3") != "1":
        yield None
        return
    from webtoon.testing.seaweed import SeaweedS3

    with SeaweedS3() as server:
        server.create_bucket("webtoon-test")
        yield server


@pytest.fixture(autouse=True)
def _media_storage(request):
    """Tests marked `storage` get media of their own: a fresh key prefix in the S3 bucket in
    the third pass, else a fresh folder, so the "every object referenced" audit sees only
    their files."""
    if request.node.get_closest_marker("storage") is None:
        yield None
        return
    settings = request.getfixturevalue("settings")
    server = request.getfixturevalue("s3_server")
    if server is None:
        location = request.getfixturevalue("tmp_path") / "media"
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location), "base_url": "/media/"},
            },
        }
        settings.AWS_STORAGE_BUCKET_NAME = ""
        yield "local"
        return
    import uuid

    prefix = f"t-{uuid.uuid4().hex[:16]}"
    settings.STORAGES = {**settings.STORAGES, "default": server.storages("webtoon-test", prefix)}
    settings.AWS_STORAGE_BUCKET_NAME = "webtoon-test"
    yield "s3"
