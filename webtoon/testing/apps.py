from django.apps import AppConfig
from django.conf import settings


class TestingConfig(AppConfig):
    """Only in soak settings: routes fal traffic to the loopback fake (see forwarding)."""

    name = "webtoon.testing"
    label = "webtoon_testing"

    def ready(self) -> None:
        url = getattr(settings, "WEBTOON_FAL_FAKE_URL", "")
        if url:
            from .forwarding import install

            install(url)
