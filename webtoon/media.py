"""Owner-only media.

Every file a user owns is stored under `u/<user id>/...` with an unguessable name, and is
served only through the access-checked view in webtoon.views.media: its owner (or staff with
the support permission `accounts.view_user_media`) gets it, anyone else gets 404. On S3 the
view redirects to a short-lived presigned URL.
"""

from __future__ import annotations

import uuid

from django.urls import reverse

MEDIA_PERMISSION = "accounts.view_user_media"


def owner_prefix(user_id: int) -> str:
    return f"u/{user_id}/"


def user_file_name(user_id: int, folder: str, ext: str) -> str:
    """A fresh storage name for one of the user's files: u/<id>/<folder>/<uuid>.<ext>."""
    return f"{owner_prefix(user_id)}{folder.strip('/')}/{uuid.uuid4().hex}.{ext.lstrip('.')}"


def can_access(user, name: str) -> bool:
    if not user.is_authenticated or ".." in name.split("/"):
        return False
    if name.startswith(owner_prefix(user.pk)):
        return True
    # is_staff alone only opens the admin; reading a user's photos needs the permission.
    return user.is_staff and user.has_perm(MEDIA_PERMISSION)


def media_url(name: str | None) -> str | None:
    """The URL a browser or script uses for a stored file (never a storage/bucket URL)."""
    if not name:
        return None
    return reverse("media", kwargs={"name": name})
