"""Soak settings: the real settings, with fal traffic sent to the loopback fal fake server.

Used only by `make soak` (soak/run.py); every process it starts (gunicorn workers, each
qcluster) loads this module through DJANGO_SETTINGS_MODULE."""

from webtoon.settings import *  # noqa: F403
from webtoon.settings import INSTALLED_APPS, env

WEBTOON_FAL_FAKE_URL = env("WEBTOON_FAL_FAKE_URL")
INSTALLED_APPS = [*INSTALLED_APPS, "webtoon.testing"]
