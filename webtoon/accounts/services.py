"""Accounts: API tokens and the demo account."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ApiToken, PendingEmailVerification, hash_token

logger = logging.getLogger(__name__)

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


# A script polling a status every second paid a token query (with its ORM compilation) on
# every request (issue 19). A valid token's user is kept this long in the default cache;
# revoking a token, saving or deleting its user forgets it at once (signals.py), in every
# process with Redis, in this process with the per-process cache (the others within this).
TOKEN_CACHE_SECONDS = 10


def _token_key(digest: str) -> str:
    return f"api-token:{digest}"


def forget_tokens(*digests: str) -> None:
    if digests:
        cache.delete_many([_token_key(d) for d in digests])


def user_for_token(raw: str):
    """The active user a raw token belongs to, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(raw)
    user = cache.get(_token_key(digest))
    if user is not None:
        return user
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    cache.set(_token_key(digest), token.user, TOKEN_CACHE_SECONDS)
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


# --- e-mail verification (SIGNUP_REQUIRE_EMAIL_VERIFICATION) ---------------------------------
VERIFY_SALT = "webtoon.accounts.verify-email"
VERIFY_MAX_AGE = 3 * 24 * 3600


def require_verification(user, email: str) -> PendingEmailVerification:
    """Hold `user`'s paid actions until `email` is confirmed, and send the link."""
    pending, _created = PendingEmailVerification.objects.update_or_create(
        user=user, defaults={"email": email}
    )
    token = signing.dumps({"u": user.pk, "e": email}, salt=VERIFY_SALT)
    link = reverse("verify_email", kwargs={"token": token})
    base = (settings.WEBTOON_PUBLIC_URL or "").rstrip("/")
    body = _(
        "웹툰 캐릭터 스튜디오 가입을 환영합니다.\n\n아래 링크를 열어 이메일 주소를 확인해주세요 "
        "(3일 동안 유효합니다). 확인 전에는 비용이 드는 작업을 시작할 수 없습니다.\n\n%(url)s\n"
    ) % {"url": f"{base}{link}"}
    address = email

    def send():
        try:
            send_mail(_("[웹툰 캐릭터 스튜디오] 이메일 주소 확인"), body,
                      settings.DEFAULT_FROM_EMAIL, [address])
        except Exception:
            logger.exception("verification e-mail to user %s failed", user.pk)

    transaction.on_commit(send)
    PendingEmailVerification.objects.filter(pk=pending.pk).update(sent_at=timezone.now())
    return pending


def verify_email(token: str):
    """Confirm the address in `token`; returns the user, or None for a bad or old link (or an
    address changed since)."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    pending = PendingEmailVerification.objects.select_related("user").filter(
        user_id=data.get("u"), email=data.get("e")
    ).first()
    if pending is None:
        return None
    user = pending.user
    pending.delete()
    return user


def is_verification_pending(user) -> bool:
    return PendingEmailVerification.objects.filter(user_id=user.pk).exists()
