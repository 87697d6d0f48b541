"""The image backend: one small interface (submit, status, result, cancel, upload, download)
and two implementations, fal.ai through fal-client and an offline one that needs no network."""

import functools

from django.conf import settings

from .base import (
    AccountRefused,
    BackendError,
    ContentRefused,
    DownloadRefused,
    ImageBackend,
    InputInvalid,
    RemoteFileGone,
    RemoteRejected,
    RemoteStatus,
    RemoteUnavailable,
    SubmitUnknown,
)

__all__ = [
    "AccountRefused",
    "BackendError",
    "ContentRefused",
    "DownloadRefused",
    "ImageBackend",
    "InputInvalid",
    "RemoteFileGone",
    "RemoteRejected",
    "RemoteStatus",
    "RemoteUnavailable",
    "SubmitUnknown",
    "get_backend",
]


def get_backend(name: str | None = None) -> ImageBackend:
    """The configured backend (WEBTOON_BACKEND), or a named one (a call keeps its backend)."""
    name = name or settings.WEBTOON_BACKEND
    if name == "fal":
        return _fal_backend(settings.FAL_KEY)
    if name == "offline":
        from .offline import OfflineBackend

        return OfflineBackend(settings.WEBTOON_OFFLINE_DIR)
    raise ValueError(f"unknown image backend {name!r}")


@functools.lru_cache(maxsize=4)
def _fal_backend(key: str) -> ImageBackend:
    """One fal client per process (and key): building one costs ~25 ms (its SSL context) and
    a shared one keeps its connections to fal open between job passes. It is thread-safe."""
    from .fal import FalBackend

    return FalBackend(key=key)
