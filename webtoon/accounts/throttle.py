"""Database-backed rate limits for what costs us without paying fal (issue 18): sign-ups per
client address, and per-user heavy free actions (restore, uploads, exports, previews).

Counted in RateEvent rows, so the limit holds across gunicorn processes and machines. Two
requests racing past the last free slot may both pass; these limits bound abuse, not money
(money is limited exactly, under a row lock, by webtoon/jobs/limits.py).
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import TooManyRequests
from webtoon.jobs.limits import parse_rate

from .models import RateEvent

# The per-user heavy actions and the setting holding each one's rate ("N/<k><s|m|h|d>").
ACTIONS = {
    "restore": "RATE_LIMIT_RESTORE",
    "upload": "RATE_LIMIT_UPLOADS",
    "export": "RATE_LIMIT_EXPORTS",
    "preview": "RATE_LIMIT_PREVIEWS",
}


def client_ip(request) -> str:
    """The client's address. Behind WEBTOON_PROXY_COUNT trusted proxies, each appending to
    X-Forwarded-For, the address the outermost trusted proxy saw; else REMOTE_ADDR (a header
    any client can set is never believed on its own)."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = settings.WEBTOON_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    return forwarded[-hops] if len(forwarded) >= hops else remote


def wait_message(retry_after: int) -> str:
    if retry_after < 60:
        return _("요청이 너무 많습니다. %(n)d초 후에 다시 시도해주세요.") % {"n": retry_after}
    return _("요청이 너무 많습니다. %(n)d분 후에 다시 시도해주세요.") % {
        "n": math.ceil(retry_after / 60)
    }


def hit(key: str, rate: str, *, message=wait_message) -> None:
    """Count one action under `key`, or raise TooManyRequests (with the seconds to wait) when
    `rate` is used up. An empty rate counts nothing."""
    parsed = parse_rate(rate)
    if parsed is None:
        return
    limit, window = parsed
    now = timezone.now()
    since = now - timedelta(seconds=window)
    RateEvent.objects.filter(key=key, at__lt=since).delete()  # keeps the table small
    recent = list(
        RateEvent.objects.filter(key=key, at__gte=since)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        # A slot frees when the oldest of the last `limit` actions leaves the window.
        frees_at = recent[-1] + timedelta(seconds=window)
        retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
        raise TooManyRequests(message(retry_after), retry_after=retry_after)
    RateEvent.objects.create(key=key, at=now)


def check_action(user, action: str) -> None:
    """Count one heavy free action of `user` (see ACTIONS), or raise TooManyRequests."""
    hit(f"{action}:u{user.pk}", getattr(settings, ACTIONS[action]))


def check_signup(request) -> None:
    """Count one sign-up from this client address, or raise TooManyRequests."""

    def message(retry_after: int) -> str:
        return _(
            "이 주소에서 가입이 너무 많습니다. %(n)d분 후에 다시 시도해주세요."
        ) % {"n": math.ceil(retry_after / 60)}

    hit(f"signup:{client_ip(request)}"[:120], settings.SIGNUP_RATE_LIMIT, message=message)
