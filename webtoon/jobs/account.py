"""The one fal account every user shares: its slots and its circuit breaker.

Slots. fal runs a few requests at a time per account (2 on a new one) and queues the rest
first in, first out, so one user's 24 cuts would hold back everybody else's. With
FAL_ACCOUNT_CONCURRENCY > 0 we never have more than that many requests in flight at fal: the
rest wait in *our* queue as PENDING calls, admitted round robin by user (each user's oldest
first). Admission happens under a lock on the FalAccount row, so two runners never both take
the last slot, and the admitted calls are marked SUBMITTING in the same transaction.

Circuit breaker. A 401 (wrong key) or a 403 that is not about a file ("User is locked.
Reason: Exhausted balance") means the account cannot work: every submit stops, affected
calls go back to waiting without using up an attempt, staff are alerted, and one request is
let through every FAL_ACCOUNT_PROBE_SECONDS; the first one fal accepts resumes everything.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import (
    IN_FLIGHT_CALL_STATES,
    CallAttempt,
    CallState,
    FalAccount,
    JobState,
    RemoteCall,
)

logger = logging.getLogger(__name__)

PAUSED_MESSAGE = gettext_lazy("일시적으로 생성이 멈췄습니다. 자동으로 다시 시작합니다.")


def _row() -> FalAccount:
    row, _created = FalAccount.objects.get_or_create(pk=1)
    return row


# Every status poll shows the account's state (presenters.wait_message): the answer is kept
# this long in the default cache (issue 19); pause() and resume() replace it at once.
PAUSED_CACHE_KEY = "fal-account-paused"
PAUSED_CACHE_SECONDS = 2


def paused() -> FalAccount | None:
    """The account row when fal refuses the account, else None (one indexed read, or none
    within PAUSED_CACHE_SECONDS of the last)."""
    state = cache.get(PAUSED_CACHE_KEY)
    if state is None:
        state = FalAccount.objects.filter(pk=1, paused_at__isnull=False).first() or False
        cache.set(PAUSED_CACHE_KEY, state, PAUSED_CACHE_SECONDS)
    return state or None


def limited() -> bool:
    return settings.FAL_ACCOUNT_CONCURRENCY > 0


# --- admission --------------------------------------------------------------------------------
def mark_submitting(calls: list[RemoteCall], now) -> list[RemoteCall]:
    """PENDING -> SUBMITTING (conditional, attempt counted, history row opened)."""
    marked = []
    for call in calls:
        updated = RemoteCall.objects.filter(pk=call.pk, state=CallState.PENDING).update(
            state=CallState.SUBMITTING, attempts=F("attempts") + 1, queue_position=None
        )
        if updated:
            call.refresh_from_db()
            CallAttempt.objects.create(call=call, number=call.attempts, started_at=now)
            marked.append(call)
    return marked


def admit(job, calls: list[RemoteCall], now, *, max_count: int) -> list[RemoteCall]:
    """The calls of `job` that may be submitted now, already marked SUBMITTING; the others
    stay PENDING in our queue with their position noted."""
    if not calls:
        return []
    state = paused()
    if state is not None:
        return _probe(job, calls, now, state)
    if not limited():
        return mark_submitting(calls[:max_count], now)
    backend = calls[0].backend
    with transaction.atomic():
        _lock()
        in_flight = RemoteCall.objects.filter(holding_slot(backend, now)).count()
        free = settings.FAL_ACCOUNT_CONCURRENCY - in_flight
        order = fair_order(backend, now)
        head = set(order[: max(0, free)])
        mine = [c for c in calls if c.pk in head][:max_count]
        marked = mark_submitting(mine, now)
    _note_positions(calls, marked, order)
    return marked


def holding_slot(backend: str, now) -> Q:
    """Calls that hold one of the account's slots: at fal or on their way. An orphan (its
    submit answer lost) may be running at fal, so it holds a slot, but only for
    FAL_ORPHAN_SLOT_SECONDS: had fal taken it, it has finished by then (its webhook may come
    later), and a submit that never reached fal must not hold a slot until its deadline."""
    since = now - timedelta(seconds=settings.FAL_ORPHAN_SLOT_SECONDS)
    live = Q(state__in=[s for s in IN_FLIGHT_CALL_STATES if s != CallState.ORPHANED])
    recent_orphan = Q(state=CallState.ORPHANED, last_checked_at__gte=since)
    return Q(backend=backend) & (live | recent_orphan)


def _lock() -> None:
    """Serialize admissions: a row lock on PostgreSQL; on SQLite the write itself takes the
    database's write lock (transactions are IMMEDIATE), which is as strict."""
    _row()
    if connection.vendor == "sqlite":
        FalAccount.objects.filter(pk=1).update(pauses=F("pauses"))
    else:
        FalAccount.objects.select_for_update().get(pk=1)


def fair_order(backend: str, now) -> list[int]:
    """Every call waiting in our queue, in the order slots go to them: round robin by user,
    each user's calls oldest first. A user's requests already at fal count as turns taken,
    so a newcomer is served before someone who holds the slots already; among equals the
    user served least recently goes first (never served: first of all), then the one who
    has waited longest."""
    rows = (
        RemoteCall.objects.filter(
            backend=backend,
            state=CallState.PENDING,
            job__state__in=(JobState.QUEUED, JobState.RUNNING),
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("job__created_at", "job_id", "slot", "pk")
        .values_list("pk", "job__owner_id")
    )
    by_user: OrderedDict[int, list[int]] = OrderedDict()
    for pk, owner_id in rows:
        by_user.setdefault(owner_id, []).append(pk)
    if not by_user:
        return []
    busy = Counter(
        RemoteCall.objects.filter(
            holding_slot(backend, now), job__owner_id__in=list(by_user)
        ).values_list("job__owner_id", flat=True)
    )
    served = dict(
        RemoteCall.objects.filter(
            backend=backend,
            job__owner_id__in=list(by_user),
            submitted_at__gte=now - timedelta(hours=1),
        )
        .values("job__owner_id")
        .annotate(last=Max("submitted_at"))
        .values_list("job__owner_id", "last")
    )
    never = now - timedelta(days=3650)
    ranked = [
        (busy[owner] + i, served.get(owner) or never, seniority, pk)
        for seniority, (owner, pks) in enumerate(by_user.items())
        for i, pk in enumerate(pks)
    ]
    return [pk for *_key, pk in sorted(ranked)]


def _note_positions(calls: list[RemoteCall], marked: list[RemoteCall], order: list[int]) -> None:
    """The job's place in our queue ("대기 중 (앞에 N건)"): requests ahead of its first held
    call, kept on that call only (one write at most per pass, none when unchanged)."""
    taken = {c.pk for c in marked}
    index = {pk: i for i, pk in enumerate(order)}
    held = sorted((index[c.pk], c) for c in calls if c.pk not in taken and c.pk in index)
    first = held[0][1].pk if held else None
    for ahead, call in held:
        wanted = ahead if call.pk == first else None
        if call.queue_position != wanted:
            RemoteCall.objects.filter(pk=call.pk, state=CallState.PENDING).update(
                queue_position=wanted
            )
            call.queue_position = wanted


def next_in_line(backend: str, now, *, exclude_job: int | None = None) -> list[int]:
    """Jobs whose calls would get the slots free right now (to wake their runners)."""
    if not limited() or paused() is not None:
        return []
    in_flight = RemoteCall.objects.filter(holding_slot(backend, now)).count()
    free = settings.FAL_ACCOUNT_CONCURRENCY - in_flight
    if free <= 0:
        return []
    head = fair_order(backend, now)[:free]
    jobs = RemoteCall.objects.filter(pk__in=head).values_list("job_id", flat=True).distinct()
    return [j for j in jobs if j != exclude_job]


def queued_ahead(job) -> int | None:
    """How many requests wait before this job's first held call, or None when none is held."""
    positions = [
        c.queue_position
        for c in job.calls.all()
        if c.state == CallState.PENDING and c.queue_position is not None
    ]
    return min(positions) if positions else None


# --- circuit breaker --------------------------------------------------------------------------
def _probe(job, calls: list[RemoteCall], now, state: FalAccount) -> list[RemoteCall]:
    """While paused, one runner a minute may send one call to see if fal works again."""
    due = now - timedelta(seconds=settings.FAL_ACCOUNT_PROBE_SECONDS)
    claimed = (
        FalAccount.objects.filter(pk=1, paused_at__isnull=False)
        .filter(Q(last_probe_at__isnull=True) | Q(last_probe_at__lte=due))
        .update(last_probe_at=now)
    )
    if not claimed:
        return []
    logger.info("fal account paused: probing with call %s", calls[0].pk)
    return mark_submitting(calls[:1], now)


def pause(error) -> bool:
    """fal refused the account: stop every submit. True when this call paused it (the first
    to see the refusal alerts staff once)."""
    now = timezone.now()
    _row()
    started = FalAccount.objects.filter(pk=1, paused_at__isnull=True).update(
        paused_at=now,
        last_probe_at=now,
        reason=str(error)[:2000],
        status_code=getattr(error, "status_code", None),
        pauses=F("pauses") + 1,
    )
    cache.delete(PAUSED_CACHE_KEY)
    if not started:
        FalAccount.objects.filter(pk=1).update(reason=str(error)[:2000])
        return False
    logger.error("fal refused the account, all submits paused: %s", error)
    _alert_staff(str(error))
    return True


def resume() -> bool:
    """fal accepted a request again: everything waiting goes on by itself."""
    resumed = FalAccount.objects.filter(pk=1, paused_at__isnull=False).update(
        paused_at=None, resumed_at=timezone.now(), reason=""
    )
    cache.delete(PAUSED_CACHE_KEY)
    if resumed:
        logger.warning("fal accepts the account again: submits resumed")
        from .services import wake_waiting  # the engine imports this module

        wake_waiting()
    return bool(resumed)


def _alert_staff(reason: str) -> None:
    updated = FalAccount.objects.filter(pk=1).update(alerted_at=timezone.now())
    if not updated:
        return
    try:
        mail_admins(
            _("fal 계정이 요청을 거절합니다 — 모든 생성이 멈췄습니다"),
            _(
                "fal이 계정을 거절했습니다 (키 오류 또는 잔액 소진).\n\n%(reason)s\n\n"
                "사용자의 작업은 실패하지 않고 대기 중입니다. fal에서 문제를 해결하면 "
                "1분 안에 자동으로 다시 시작합니다."
            )
            % {"reason": reason},
            fail_silently=True,
        )
    except Exception:  # an alert must never break the runner that saw the refusal
        logger.exception("could not e-mail admins about the fal account")
