"""Accounts: API tokens and the demo account."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import ApiToken, hash_token

TOKEN_PREFIX = "wt_"


def create_api_token(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns (row, raw token). The raw token is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "script", prefix=raw[:10], token_hash=hash_token(raw)
    )
    return token, raw


def revoke_api_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


LAST_USED_EVERY = timedelta(seconds=60)


def user_for_token(raw: str):
    """The active user a raw token belongs to, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # A write per request would cost every status poll a disk sync: once a minute is enough
    # to tell support which tokens are in use.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def ensure_demo_user(username: str, password: str):
    """Create the demo account if missing (make run); returns (user, created)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_password(password)
        user.save()
    return user, created
