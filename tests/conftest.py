import io
import os

import fal_client.client
import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from webtoon.testing.fal_fake import FalFake

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# inside one unless told that this is fine (it is: the loop is Playwright's, not ours).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


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
