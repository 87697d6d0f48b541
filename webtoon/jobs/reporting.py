"""Back-office reads over jobs: failures by cause and spend per user and per day.

Each report is one aggregate query (plus one for the latest example of each failure
cause), whatever the number of jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from . import limits
from .limits import ZERO
from .models import Job, JobState


def _since(field: str, since: datetime) -> Q:
    return Q(**{f"{field}__gte": since})


def failed_since(since: datetime) -> Q:
    """Failed jobs that failed after `since` (jobs failed outside the engine may lack a
    finished time: their creation time counts)."""
    return Q(state=JobState.FAILED) & (
        Q(finished_at__gte=since) | Q(finished_at__isnull=True, created_at__gte=since)
    )


def failures_by_cause(now: datetime | None = None) -> list[dict]:
    """Failed jobs of the last 7 days grouped by error code: counts for 24 h and 7 days, the
    kinds involved and the latest example (id, kind, message, when), most frequent first."""
    now = now or timezone.now()
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    recent = Job.objects.filter(failed_since(week))
    latest = recent.filter(error_code=OuterRef("error_code")).order_by(
        Coalesce("finished_at", "created_at").desc(), "-pk"
    )
    rows = (
        recent.values("error_code")
        .annotate(
            count_week=Count("pk"),
            count_day=Count("pk", filter=failed_since(day)),
            last_failed_at=Max(Coalesce("finished_at", "created_at")),
            latest_id=Subquery(latest.values("pk")[:1]),
        )
        .order_by("-count_day", "-count_week", "error_code")
    )
    rows = list(rows)
    examples = Job.objects.select_related("owner").in_bulk([r["latest_id"] for r in rows])
    kinds = {}
    for code, kind in recent.values_list("error_code", "kind").distinct():
        kinds.setdefault(code, set()).add(kind)
    for row in rows:
        row["latest"] = examples.get(row["latest_id"])
        row["kinds"] = sorted(kinds.get(row["error_code"], ()))
    return rows


def _money():
    return {
        "estimated": Coalesce(Sum("cost_estimated"), ZERO),
        "recorded": Coalesce(Sum("cost_recorded"), ZERO),
        "refunded": Coalesce(Sum("cost_recorded", filter=Q(refunded_at__isnull=False)), ZERO),
        "jobs": Count("pk"),
    }


def spend_per_day(since: datetime, *, owner_id: int | None = None) -> list[dict]:
    """Estimated, recorded and refunded spend per (local) day since `since`, newest first."""
    jobs = Job.objects.filter(created_at__gte=since)
    if owner_id is not None:
        jobs = jobs.filter(owner_id=owner_id)
    return list(
        jobs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**_money())
        .order_by("-day")
    )


def spend_per_user(since: datetime, *, limit: int = 20) -> list[dict]:
    """The users who spent most since `since` (recorded cost first, then estimated).

    `today`: what counts toward each one's daily spend cap (limits.counted_today); exact
    when `since` is at least a day back, as every back-office period is."""
    today = Coalesce(Sum("cost_estimated", filter=limits.counted_today()), ZERO)
    return list(
        Job.objects.filter(created_at__gte=since)
        .values("owner_id", "owner__username", "owner__email")
        .annotate(**_money(), today=today)
        .order_by("-recorded", "-estimated", "owner_id")[:limit]
    )


def spend_total(since: datetime) -> dict:
    return Job.objects.filter(created_at__gte=since).aggregate(**_money())
