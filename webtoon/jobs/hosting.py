"""Files of ours hosted where a backend can fetch them, and how old each upload is.

The photo, a training ZIP and a LoRA are uploaded to fal and their URLs reused later (retries,
retraining, more cuts, scenes). fal keeps media "at least 7 days": an upload older than
FAL_UPLOAD_MAX_AGE_SECONDS is uploaded again from our stored copy before it is reused, so a
request never names a file fal may have dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from webtoon.imaging import get_backend

from .models import HostedFile

logger = logging.getLogger(__name__)

# Argument names that carry input file URLs (FAL.md §2).
URL_KEYS = ("image_url", "mask_url", "images_data_url", "image_data_url")
URL_LIST_KEYS = ("image_urls",)


def upload(
    backend_name: str,
    data: bytes,
    *,
    content_type: str,
    file_name: str,
    storage_name: str,
) -> str:
    """Upload `data` (our stored file `storage_name`) and remember when, for reuse checks."""
    url = get_backend(backend_name).upload(data, content_type, file_name)
    remember(
        url,
        backend_name=backend_name,
        storage_name=storage_name,
        content_type=content_type,
        file_name=file_name,
    )
    return url


def remember(
    url: str,
    *,
    backend_name: str,
    storage_name: str,
    content_type: str = "application/octet-stream",
    file_name: str = "file",
    uploaded_at: datetime | None = None,
) -> None:
    """Note a URL that serves one of our stored files (an upload, or a trainer's result we
    keep a copy of), so it can be refreshed from that copy once it is old."""
    if not url or not storage_name:
        return
    HostedFile.objects.update_or_create(
        url=url[:1000],
        defaults={
            "backend": backend_name,
            "storage_name": storage_name,
            "content_type": content_type,
            "file_name": file_name[:100],
            "uploaded_at": uploaded_at or timezone.now(),
        },
    )


def is_stale(hosted: HostedFile, now: datetime | None = None) -> bool:
    age = timedelta(seconds=settings.FAL_UPLOAD_MAX_AGE_SECONDS)
    return (now or timezone.now()) - hosted.uploaded_at >= age


def fresh_url(url: str, backend_name: str, now: datetime | None = None) -> str:
    """`url` itself while it is young enough; else a new upload of our copy (the old row
    points to its replacement, so every later reuse finds the fresh one at once)."""
    hosted = HostedFile.objects.filter(url=url).first()
    if hosted is None:
        return url
    if hosted.replaced_by:
        return fresh_url(hosted.replaced_by, backend_name, now)
    if not is_stale(hosted, now) or not default_storage.exists(hosted.storage_name):
        return url
    with default_storage.open(hosted.storage_name, "rb") as fh:
        data = fh.read()
    new_url = upload(
        backend_name,
        data,
        content_type=hosted.content_type,
        file_name=hosted.file_name,
        storage_name=hosted.storage_name,
    )
    HostedFile.objects.filter(pk=hosted.pk).update(replaced_by=new_url[:1000])
    logger.info("re-hosted %s (uploaded %s) before reuse", hosted.storage_name, hosted.uploaded_at)
    return new_url


def freshen_arguments(arguments: dict[str, Any], backend_name: str) -> bool:
    """Replace every input URL in a call's arguments that is too old to trust; True when
    something changed (the caller saves the arguments before submitting)."""
    changed = False

    def swap(url: Any) -> Any:
        nonlocal changed
        if not isinstance(url, str) or not url.startswith("https://"):
            return url
        new = fresh_url(url, backend_name)
        changed = changed or new != url
        return new

    for key in URL_KEYS:
        if key in arguments:
            arguments[key] = swap(arguments[key])
    for key in URL_LIST_KEYS:
        if isinstance(arguments.get(key), list):
            arguments[key] = [swap(u) for u in arguments[key]]
    for lora in arguments.get("loras") or []:
        if isinstance(lora, dict) and "path" in lora:
            lora["path"] = swap(lora["path"])
    return changed
