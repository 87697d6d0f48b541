"""Per-user limits on actions that pay fal: a rate limit and a daily spend cap (issue 8).

Both are counted from the database, not a cache: the default cache is per process, and
gunicorn runs several. The check runs inside the transaction that creates (or retries) the
job, after locking the owner's row, so two requests of one user are decided one after the
other and cannot both slip under a limit.

Only what the user asks for is limited (create_job/retry_job with limited=True). Follow-ups
the system starts on its own (test images after a training, engine retries, releasing a held
training) and support's actions are never refused, though their cost counts toward the day.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import DomainError, TooManyRequests

from .models import CallState, Job

# Keys in Job.subject: when the owner asked for this job, and when the owner last retried
# it, in epoch seconds; each is one action for the rate limit. Jobs without them were
# started by the system or by support. (A dedicated column would be tidier; the subject
# keeps this change free of migrations.)
MARK = "user_action_at"
RETRY_MARK = "user_retry_at"

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=3))


@lru_cache
def parse_rate(value: str) -> tuple[int, int] | None:
    """"30/10m" -> (30, 600): at most 30 actions per 600 seconds; "" -> None (no limit)."""
    value = (value or "").strip()
    if not value:
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*([smhd])", value)
    if not match or int(match[1]) < 1 or match[2] == "0":
        raise ImproperlyConfigured(
            f"RATE_LIMIT_COSTLY={value!r}: expected N/<k><s|m|h|d>, e.g. 30/10m"
        )
    return int(match[1]), int(match[2] or 1) * UNITS[match[3]]


def daily_cap() -> Decimal | None:
    cap = Decimal(str(settings.DAILY_SPEND_CAP_USD or 0))
    return cap if cap > 0 else None


def site_daily_cap() -> Decimal | None:
    """DAILY_SITE_SPEND_CAP_USD: every user together, per local day (issue 18: accounts are
    free, so a per-user cap alone bounds nothing)."""
    cap = Decimal(str(getattr(settings, "DAILY_SITE_SPEND_CAP_USD", 0) or 0))
    return cap if cap > 0 else None


def lock_owner(user) -> None:
    """Serialize this user's costly decisions until the transaction ends. NO KEY UPDATE: it
    does not wait on (or deadlock with) rows the same transaction just inserted that point
    at the user, which take a KEY SHARE lock on PostgreSQL; SQLite serializes writers."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()


def mark(subject: dict | None, *, retry: bool = False) -> dict:
    return {**(subject or {}), RETRY_MARK if retry else MARK: timezone.now().timestamp()}


def day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Today's start and tomorrow's start, in the site's time zone (TIME_ZONE)."""
    tz = timezone.get_default_timezone()
    today = timezone.localdate(now or timezone.now(), tz)
    start = datetime.combine(today, time.min, tzinfo=tz)
    return start, datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)


def counted_today(now: datetime | None = None) -> Q:
    """The jobs whose cost counts toward today's cap: created today (local day), not refunded."""
    start, _end = day_bounds(now)
    return Q(created_at__gte=start, refunded_at__isnull=True)


def spent_today(user, now: datetime | None = None) -> Decimal:
    """Estimated cost of the user's jobs created today, refunded ones left out."""
    return Job.objects.filter(counted_today(now), owner=user).aggregate(
        total=Coalesce(Sum("cost_estimated"), ZERO)
    )["total"]


def spent_today_site(now: datetime | None = None) -> Decimal:
    """Estimated cost of everyone's jobs created today, refunded ones left out."""
    return Job.objects.filter(counted_today(now)).aggregate(
        total=Coalesce(Sum("cost_estimated"), ZERO)
    )["total"]


def check_costly(user, cost: Decimal, *, lock: bool = True) -> None:
    """Raise TooManyRequests if `user` may not start an action estimated at `cost` now.

    Call inside the transaction that records the action (lock=True). lock=False is an
    early, advisory check before work that is hard to undo (e.g. packaging a ZIP); the
    transaction checks again."""
    _check_verified(user)
    if lock:
        lock_owner(user)
    now = timezone.now()
    _check_rate(user, now)
    _check_spend(user, Decimal(cost), now)
    _check_site_spend(Decimal(cost), now)


def _check_verified(user) -> None:
    from webtoon.accounts.models import PendingEmailVerification

    if PendingEmailVerification.objects.filter(user_id=user.pk).exists():
        raise DomainError(
            _("이메일 인증을 마친 뒤에 이용할 수 있습니다. 받은 메일의 링크를 눌러주세요."),
            status_code=403,
        )


def _check_site_spend(cost: Decimal, now: datetime) -> None:
    """The site-wide cap. Not under a site-wide lock (that would serialize every user): two
    users racing at the very edge may both pass, overshooting by at most one action each."""
    cap = site_daily_cap()
    if cap is None:
        return
    spent = spent_today_site(now)
    if spent + cost <= cap:
        return
    from webtoon.notifications.services import alert_site_cap_reached

    alert_site_cap_reached(cap=cap, spent=spent)
    _start, tomorrow = day_bounds(now)
    message = _(
        "오늘 서비스 전체의 사용 한도에 도달했습니다. 내일 다시 시도해주세요. "
        "급한 경우 관리자에게 문의해주세요."
    )
    retry_after = max(1, math.ceil((tomorrow - now).total_seconds()))
    raise TooManyRequests(message, retry_after=retry_after)


def _check_rate(user, now: datetime) -> None:
    rate = parse_rate(settings.RATE_LIMIT_COSTLY)
    if rate is None:
        return
    limit, window = rate
    since = now.timestamp() - window
    recent = Q(**{f"subject__{MARK}__gte": since}) | Q(**{f"subject__{RETRY_MARK}__gte": since})
    pairs = Job.objects.filter(recent, owner=user).values_list(
        f"subject__{MARK}", f"subject__{RETRY_MARK}"
    )
    stamps = sorted(s for pair in pairs for s in pair if s is not None and s >= since)
    if len(stamps) < limit:
        return
    # A slot frees when the action that pushed the count to the limit leaves the window.
    frees_at = stamps[len(stamps) - limit] + window
    retry_after = max(1, math.ceil(frees_at - now.timestamp()))
    if retry_after < 60:
        message = _("요청이 너무 많습니다. %(n)d초 후에 다시 시도해주세요.") % {"n": retry_after}
    else:
        message = _("요청이 너무 많습니다. %(n)d분 후에 다시 시도해주세요.") % {
            "n": math.ceil(retry_after / 60)
        }
    raise TooManyRequests(message, retry_after=retry_after)


def _check_spend(user, cost: Decimal, now: datetime) -> None:
    cap = daily_cap()
    if cap is None:
        return
    spent = spent_today(user, now)
    if spent + cost <= cap:
        return
    _start, tomorrow = day_bounds(now)
    message = _(
        "오늘의 사용 한도($%(cap).2f)를 초과했습니다. (오늘 사용: $%(spent).2f, 이번 요청: "
        "$%(cost).2f) 내일 다시 시도하거나 관리자에게 문의해주세요."
    ) % {"cap": cap, "spent": spent, "cost": cost}
    retry_after = max(1, math.ceil((tomorrow - now).total_seconds()))
    raise TooManyRequests(message, retry_after=retry_after)


def retry_cost(job: Job, unit_cost: Decimal) -> Decimal:
    """What a retry adds to today's spend: nothing for a job counted today already (its
    estimate covers every call succeeding); else its failed calls run again."""
    start, _end = day_bounds()
    if job.created_at >= start and job.refunded_at is None:
        return Decimal("0")
    again = job.calls.filter(state__in=(CallState.FAILED, CallState.CANCELLED)).count()
    return unit_cost * again
