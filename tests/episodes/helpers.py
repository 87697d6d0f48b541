"""Shared steps for the episode tests."""

import io
from importlib import import_module

import numpy as np
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from episodes import services
from episodes.models import Episode

LORA = "fal-ai/flux-lora"


def picture(size=(768, 1024), color=(200, 150, 100), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    image = Image.new("RGB", size, color)
    # A stripe, so crops and slices can be told apart in a picture.
    image.paste((30, 30, 30), (0, size[1] // 2 - 5, size[0], size[1] // 2 + 5))
    image.save(buf, fmt)
    return buf.getvalue()


def upload(size=(768, 1024), color=(200, 150, 100), name="panel.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, picture(size, color), content_type="image/png")


def noise(size=(800, 1280), seed=0, fmt="PNG") -> bytes:
    """A picture of random colour noise: the heaviest a file of its size gets (JPEG and PNG
    cannot compress it), for exports that must meet a size limit."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def noise_panel(owner, ep: Episode, size=(800, 1280), seed=0):
    upload = SimpleUploadedFile("noise.png", noise(size, seed), content_type="image/png")
    return services.upload_panel(owner=owner, episode_id=ep.public_id, upload=upload)


def episode(owner, title="1화 종합소득세", preset="webtoon-color") -> Episode:
    return services.create_episode(owner=owner, title=title, preset_id=preset)


def uploaded_panel(owner, ep: Episode, size=(768, 1024), color=(200, 150, 100)):
    return services.upload_panel(owner=owner, episode_id=ep.public_id, upload=upload(size, color))


def api(client, method, path, body=None):
    return getattr(client, method)(f"/api/episode/{path}", body, content_type="application/json")


def seed_presets() -> None:
    """The data migration's presets again: a transactional test's flush empties every table,
    seeded rows included."""
    import_module("episodes.migrations.0002_style_presets").seed(apps, None)
