"""Owner-only media.

Every file a user owns is stored under `u/<user id>/...` with an unguessable name, and is
served only through the access-checked view in webtoon.views.media: its owner (or staff)
gets it, anyone else gets 404. On S3 the view redirects to a short-lived presigned URL.
"""

from __future__ import annotations

import uuid

from django.urls import reverse


def owner_prefix(user_id: int) -> str:
    return f"u/{user_id}/"


def user_file_name(user_id: int, folder: str, ext: str) -> str:
    """A fresh storage name for one of the user's files: u/<id>/<folder>/<uuid>.<ext>."""
    return f"{owner_prefix(user_id)}{folder.strip('/')}/{uuid.uuid4().hex}.{ext.lstrip('.')}"


def can_access(user, name: str) -> bool:
    if not user.is_authenticated or ".." in name.split("/"):
        return False
    return user.is_staff or name.startswith(owner_prefix(user.pk))


def media_url(name: str | None) -> str | None:
    """The URL a browser or script uses for a stored file (never a storage/bucket URL)."""
    if not name:
        return None
    return reverse("media", kwargs={"name": name})
