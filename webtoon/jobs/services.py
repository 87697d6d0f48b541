"""The job engine: create, advance, retry and refund jobs made of remote calls.

Rules that keep money and work safe:
- a call is marked SUBMITTING (and its attempt counted) before the backend is asked, and its
  request id is saved as soon as the backend answers;
- a call found SUBMITTING by a later pass belongs to a runner that died mid-submit: the remote
  side may have accepted it, so it is *not* resubmitted (that could bill twice); it fails with
  cause "submit_unknown" and support can retry it deliberately;
- network work (submit, status, result, download) runs in threads, every database write in the
  runner's own thread, so a pass over 24 cuts takes about as long as its slowest call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM as OrmBroker
from django_q.conf import Conf as QConf
from django_q.models import OrmQ
from django_q.tasks import async_task

from webtoon.imaging import (
    AccountRefused,
    BackendError,
    DownloadRefused,
    RemoteFileGone,
    RemoteRejected,
    RemoteStatus,
    RemoteUnavailable,
    SubmitUnknown,
    get_backend,
)
from webtoon.media import owner_prefix
from webtoon.per_process import per_process

from . import account, hosting, limits, pricing
from .kinds import JobKind, get_kind
from .models import (
    ACTIVE_CALL_STATES,
    IN_FLIGHT_CALL_STATES,
    TERMINAL_CALL_STATES,
    TERMINAL_JOB_STATES,
    CallAttempt,
    CallState,
    Charge,
    Job,
    JobState,
    RemoteCall,
)
from .progress import estimate_from_elapsed, steps_from_logs

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "webtoon.jobs.tasks.run_job"
# A status read asks for a pass when nobody looked at the job for this long. Under the pages'
# 5 s training poll (panel and card), so every poll brings fal's newest step: at 10 s, a pass
# ending a moment after its claim made the next claim miss a poll, and the bar moved every
# 15 s (issue 15 asks for at least every 10 s). Scripts and tabs polling faster still cost
# fal one status request per job per 4 s.
REFRESH_AFTER_SECONDS = 4
DOWNLOAD_PREFIX = "webtoon-dl-"
STALE_DOWNLOAD_SECONDS = 3600


@dataclass
class CallSpec:
    endpoint: str
    arguments: dict[str, Any]
    slot: int = 0
    output_kind: str = "image"  # "image": images[0].url, "lora": diffusers_lora_file.url


# --- creating and enqueueing ----------------------------------------------------------------
def create_job(
    *,
    owner,
    kind: str,
    calls: list[CallSpec],
    subject: dict | None = None,
    start: bool = True,
    waiting: bool = False,
    limited: bool = False,
) -> Job:
    """Persist a job and its calls; the runner is enqueued after the transaction commits.

    `waiting`: the job is held (state WAITING) until `release_waiting` starts it.
    `limited`: the owner asked for it, so the owner's rate limit and daily spend cap apply
    (TooManyRequests, nothing created); the system's own follow-ups pass False."""
    job_kind = get_kind(kind)
    cost = estimate_calls(kind, calls)
    with transaction.atomic():
        if limited:
            limits.check_costly(owner, cost)
            subject = limits.mark(subject)
        job = Job.objects.create(
            owner=owner,
            kind=kind,
            state=JobState.WAITING if waiting else JobState.QUEUED,
            subject=subject or {},
            deadline_at=timezone.now() + timedelta(seconds=job_kind.deadline_seconds),
            cost_estimated=cost,
        )
        add_calls(job, calls)
        if start and not waiting:
            enqueue(job)
    return job


def estimate_calls(kind: str, calls: list[CallSpec]) -> Decimal:
    """What these calls will cost (the cost notice and the job's estimate use this one sum)."""
    fallback = get_kind(kind).unit_cost
    return sum(
        (pricing.estimate(c.endpoint, c.arguments, fallback) for c in calls), Decimal("0")
    )


def release_waiting(job: Job) -> bool:
    """Start a held job: WAITING -> QUEUED (conditional, so it starts once), a fresh deadline."""
    kind = get_kind(job.kind)
    deadline = timezone.now() + timedelta(seconds=kind.deadline_seconds)
    released = Job.objects.filter(pk=job.pk, state=JobState.WAITING).update(
        state=JobState.QUEUED, deadline_at=deadline
    )
    if released:
        job.state, job.deadline_at = JobState.QUEUED, deadline
        enqueue(job)
    return bool(released)


def add_calls(job: Job, calls: list[CallSpec]) -> list[RemoteCall]:
    job_kind = get_kind(job.kind)
    return RemoteCall.objects.bulk_create(
        RemoteCall(
            job=job,
            slot=spec.slot,
            endpoint=spec.endpoint,
            arguments=spec.arguments,
            output_kind=spec.output_kind,
            backend=settings.WEBTOON_BACKEND,
            max_attempts=job_kind.max_attempts,
        )
        for spec in calls
    )


def enqueue(job: Job) -> None:
    job_id = job.pk
    transaction.on_commit(lambda: async_task(RUN_JOB_TASK, job_id))


def _lease_free(now) -> Q:
    """Jobs no runner holds: never leased, or the lease ran out."""
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now)


# --- leases -----------------------------------------------------------------------------------
def claim(job_id: int) -> bool:
    """Take the job's lease with a conditional UPDATE: one runner per job at a time."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    taken = (
        Job.objects.filter(pk=job_id)
        .exclude(state__in=(*TERMINAL_JOB_STATES, JobState.WAITING))
        .filter(_lease_free(now))
        .update(locked_until=until)
    )
    return taken == 1


def extend(job_id: int) -> None:
    until = timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    Job.objects.filter(pk=job_id).update(locked_until=until)


def release(job_id: int) -> None:
    Job.objects.filter(pk=job_id).update(locked_until=None)


# --- running ----------------------------------------------------------------------------------
def run_job(job_id: int) -> str:
    """Advance a job until it finishes or this task's time budget is spent.

    Long-running kinds (training) get one pass; the reconciler and status reads bring them
    back. Short kinds loop, then hand the job back to the queue if still unfinished.
    """
    if not claim(job_id):
        return "busy"
    started = time.monotonic()
    job: Job | None = None
    try:
        while True:
            job = advance_job(job_id)
            if job.is_terminal or get_kind(job.kind).long_running or _only_held(job):
                break
            if time.monotonic() - started > settings.JOB_TASK_BUDGET_SECONDS:
                break
            # Calls a hook added this pass (a scene's next stage) go out at once, no sleep.
            if not getattr(job, "added_calls", False):
                time.sleep(settings.JOB_POLL_INTERVAL)
            extend(job_id)
    finally:
        release(job_id)
    if job is not None and not job.is_terminal and not get_kind(job.kind).long_running:
        if _only_held(job):
            # Nothing of it at fal: a freed slot wakes it (wake_next), or the reconciler.
            return "held"
        async_task(RUN_JOB_TASK, job_id)
        return "continued"
    return job.state if job else "missing"


def _only_held(job: Job) -> bool:
    """All of the job's open calls wait in our queue (account slots or a paused account)
    and none is at fal: looping would only hold a worker."""
    return bool(getattr(job, "held_calls", 0)) and not getattr(job, "in_flight_calls", 0)


def advance_job(job_id: int, *, wake_others: bool = True) -> Job:
    """One pass over a job: submit what is due, poll what is in flight, finish if done.
    `wake_others`: hand the account slots this pass freed to the jobs next in line."""
    job = Job.objects.select_related("owner").get(pk=job_id)
    if job.is_terminal:
        return job
    kind = get_kind(job.kind)
    now = timezone.now()
    if job.state == JobState.QUEUED:
        if start_hook := kind.hook("on_job_start"):
            try:
                start_hook(job)  # e.g. re-host the photo where the backend can fetch it
            except AccountRefused as exc:
                account.pause(exc)  # the job waits for the account, nothing is charged
                job.held_calls = job.calls.count()
                return job
        job.state, job.started_at = JobState.RUNNING, now
    open_calls = list(job.calls.exclude(state__in=TERMINAL_CALL_STATES))
    finished: list[RemoteCall] = []
    if job.deadline_at and now >= job.deadline_at:
        finished += _expire(open_calls, now)
    else:
        finished += _fail_orphans(open_calls, now)
        due = _freshen([c for c in open_calls if _due(c, now)])
        polls = [c for c in open_calls if c.state in ACTIVE_CALL_STATES]
        # Calls go out in rounds of JOB_SUBMIT_CONCURRENCY, each marked SUBMITTING just
        # before its round: a worker killed mid-pass leaves at most one round in doubt
        # (failed as submit_unknown), never the whole set. The account admits them: with
        # FAL_ACCOUNT_CONCURRENCY the rest wait in our queue, fairly shared between users.
        size = max(1, settings.JOB_SUBMIT_CONCURRENCY)
        while True:
            marked = account.admit(job, due, timezone.now(), max_count=size)
            taken = {c.pk for c in marked}
            due = [c for c in due if c.pk not in taken]
            work = marked + polls
            polls = []
            progressed: list[RemoteCall] = []
            for call, outcome in _run_network(work, job):
                if outcome.kind == "status":  # still at fal: saved with the others below
                    _apply_status(call, outcome.status, kind)
                    progressed.append(call)
                    continue
                # A call's final state and what the kind makes of it (a cut's image, a
                # LoRA version) commit together: a worker killed in between leaves the call
                # as it was, and the next pass polls it again instead of losing the result.
                with transaction.atomic():
                    if _apply(call, outcome, job, kind):
                        _call_finished(call, kind)
            if progressed:  # one commit for the pass, not one per call
                with transaction.atomic():
                    for call in progressed:
                        call.save(update_fields=STATUS_FIELDS)
            if not marked or not due:
                break
        _hold(job, kind, due, open_calls)
    for call in finished:  # failed by deadline or as orphans above
        _call_finished(call, kind)
    with transaction.atomic():
        job.last_checked_at = timezone.now()
        _refresh(job, kind)
        job.save()
        if job.is_terminal and (job_hook := kind.hook("on_job_finished")):
            job_hook(job)
    known = {c.pk for c in open_calls}
    job.added_calls = not job.is_terminal and any(
        c.state == CallState.PENDING and c.pk not in known for c in job.calls.all()
    )
    if wake_others:
        _wake_next(job)
    return job


def _freshen(calls: list[RemoteCall]) -> list[RemoteCall]:
    """Inputs we hosted too long ago are uploaded again before a call names them; a call
    whose upload failed waits for the next pass (nothing was submitted)."""
    ready = []
    for call in calls:
        try:
            if hosting.freshen_arguments(call.arguments, call.backend):
                call.save(update_fields=["arguments"])
        except AccountRefused as exc:
            account.pause(exc)
            continue
        except BackendError as exc:
            logger.info("re-upload for call %s failed, next pass tries again: %s", call.pk, exc)
            continue
        ready.append(call)
    return ready


def _hold(job: Job, kind: JobKind, held: list[RemoteCall], open_calls: list[RemoteCall]) -> None:
    """Calls still waiting in our queue: the job's deadline counts from when fal gets its
    work, so waiting for a slot (or for the account) can never time it out."""
    job.held_calls = len(held)
    # The pass updated these rows' states in place (marked, submitted, finished).
    job.in_flight_calls = sum(c.state in IN_FLIGHT_CALL_STATES for c in open_calls)
    if held:
        restart = timezone.now() + timedelta(seconds=kind.deadline_seconds)
        if job.deadline_at is None or job.deadline_at < restart:
            job.deadline_at = restart


def _wake_next(job: Job) -> None:
    """Slots freed by this pass go to the calls first in line. A job that waits has no
    runner (it exited, holding no worker): this runner takes its lease and gives it one pass
    right here, so the slot is used at once instead of after a trip through the task queue;
    the job then gets a runner of its own to follow what it submitted."""
    if not account.limited():
        return
    backend = settings.WEBTOON_BACKEND
    for job_id in account.next_in_line(backend, timezone.now(), exclude_job=job.pk):
        if not claim(job_id):
            continue  # its own runner holds it and will take the slot
        try:
            other = advance_job(job_id, wake_others=False)
        finally:
            release(job_id)
        if not other.is_terminal and not _only_held(other):
            async_task(RUN_JOB_TASK, job_id)


def wake_waiting() -> int:
    """The account works again: every unfinished job gets a pass now."""
    return reconcile(quiet_only=False)


def _call_finished(call: RemoteCall, kind: JobKind) -> None:
    if hook := kind.hook("on_call_finished"):
        hook(call)


def _due(call: RemoteCall, now) -> bool:
    return call.state == CallState.PENDING and (
        call.next_attempt_at is None or call.next_attempt_at <= now
    )


def _fail_orphans(calls: list[RemoteCall], now) -> list[RemoteCall]:
    failed = []
    for call in [c for c in calls if c.state == CallState.SUBMITTING]:
        _charge(call, Charge.POSSIBLE, _estimate(call, get_kind(call.job.kind)))
        message = _(
            "제출 중 작업자가 중단되어 결과를 알 수 없습니다. "
            "이중 과금을 막기 위해 자동 재제출하지 않았습니다."
        )
        if _fail_unknown_submit(call, message, now):
            failed.append(call)
    return failed


def _fail_unknown_submit(call: RemoteCall, message: str, now) -> bool:
    """fal may have queued this request but we never learnt its id: never submit the same
    (paid) work a second time. With webhooks on, the call waits (ORPHANED) for fal's webhook
    to name it (its URL carries the call's id) and is adopted; else, or once the deadline
    passes, it fails as submit_unknown. True when the call failed."""
    if webhook_url(call) and call.state != CallState.ORPHANED:
        call.state, call.error_code, call.error_message = CallState.ORPHANED, "", str(message)
        call.last_checked_at = now  # orphaned since (account.holding_slot)
        call.save()
        CallAttempt.objects.filter(call=call, number=call.attempts).update(outcome="orphaned")
        return False
    _finish(call, CallState.FAILED, "submit_unknown", str(message), now)
    _close_attempt(call, "submit_unknown", call.error_message)
    CallAttempt.objects.filter(call=call, number=call.attempts, outcome="orphaned").update(
        outcome="submit_unknown", finished_at=timezone.now()
    )
    return True


def adopt(request_id: str, signed_call: str) -> RemoteCall | None:
    """fal's webhook names a request whose submit answer we lost: attach it to the call its
    URL names (signed by us) and follow it like any other. No second submit, no failure.
    The call may still read SUBMITTING (its worker died and no pass has looked since): the
    webhook names the very request that submit made, so it is the same answer either way."""
    try:
        call_id = int(signing.Signer(salt=WEBHOOK_SALT).unsign(signed_call))
    except (signing.BadSignature, ValueError):
        return None
    if not request_id or RemoteCall.objects.filter(request_id=request_id).exists():
        return None
    with transaction.atomic():
        call = (
            RemoteCall.objects.select_for_update()
            .filter(
                pk=call_id,
                state__in=(CallState.ORPHANED, CallState.SUBMITTING),
                request_id__isnull=True,
            )
            .first()
        )
        if call is None:
            return None
        now = timezone.now()
        attempt = CallAttempt.objects.filter(call=call, number=call.attempts).first()
        if attempt is not None:  # "may have been charged" becomes what the result says
            call.cost = (call.cost or Decimal("0")) - attempt.cost
            CallAttempt.objects.filter(pk=attempt.pk).update(
                request_id=request_id, outcome="", charge=Charge.NONE, cost=0
            )
        call.request_id, call.state, call.submitted_at = request_id, CallState.SUBMITTED, now
        call.error_code = call.error_message = ""
        call.save()
    logger.warning("adopted fal request %s for call %s (its submit answer was lost)",
                   request_id, call.pk)
    poke(call.job)
    return call


def _expire(calls: list[RemoteCall], now) -> list[RemoteCall]:
    for call in calls:
        if call.request_id and call.state in ACTIVE_CALL_STATES:
            try:
                get_backend(call.backend).cancel(call.endpoint, call.request_id)
            except BackendError:
                logger.info("cancel of %s after deadline failed", call.request_id)
        if call.state == CallState.ORPHANED:  # never named by fal's webhook: give up on it
            _fail_unknown_submit(call, call.error_message, now)
            continue
        if call.state == CallState.RUNNING:  # fal spent time on it; cancelled while queued: no
            _charge(call, Charge.POSSIBLE, _estimate(call, get_kind(call.job.kind)))
        _finish(call, CallState.FAILED, "deadline", "마감 시간을 넘겼습니다.", now)
        _close_attempt(call, "deadline")
    return calls


# --- the network part, in threads -------------------------------------------------------------
@dataclass
class Outcome:
    # submitted | submit_failed | status | poll_error | completed | unstored | remote_failed
    kind: str
    request_id: str | None = None
    status: RemoteStatus | None = None
    result: dict[str, Any] | None = None
    url: str = ""
    file_path: str | None = None
    size: int = 0
    error: BackendError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _pool() -> ThreadPoolExecutor:
    """This process's network threads, started once (not once per pass)."""
    size = max(1, settings.JOB_SUBMIT_CONCURRENCY)
    return per_process(
        ("fal-pool", size), lambda: ThreadPoolExecutor(max_workers=size, thread_name_prefix="fal")
    )


def _run_network(calls: list[RemoteCall], job: Job) -> Iterator[tuple[RemoteCall, Outcome]]:
    """Each call's network step, yielded as soon as it is done: a finished cut is stored
    while the others are still downloading, not after the slowest of the pass."""
    if not calls:
        return
    backends = {name: get_backend(name) for name in {c.backend for c in calls}}
    pool = _pool()
    futures = {pool.submit(_network_step, c, backends[c.backend], job): c for c in calls}
    for future in as_completed(futures):
        yield futures[future], future.result()


def _network_step(call: RemoteCall, backend, job: Job) -> Outcome:
    if call.state == CallState.SUBMITTING:
        try:
            # fal's start_timeout counts from our submit (time waited in our own queue for
            # a slot is not fal's business): the kind's whole allowance.
            wait = get_kind(job.kind).deadline_seconds
            request_id = backend.submit(
                call.endpoint, call.arguments, webhook_url=webhook_url(call), start_timeout=wait
            )
            return Outcome("submitted", request_id=request_id)
        except BackendError as exc:
            return Outcome("submit_failed", error=exc)
    result = call.result
    status = None
    try:
        if result is None:
            status = backend.status(call.endpoint, call.request_id)
            if status.state != "completed":
                return Outcome("status", status=status)
            if status.error:
                return Outcome("remote_failed", status=status, error=_completed_error(
                    backend, call, status
                ))
            result = backend.result(call.endpoint, call.request_id)
        url = output_url(result, call.output_kind)
        cap = settings.MAX_LORA_BYTES if call.output_kind == "lora" else settings.MAX_DOWNLOAD_BYTES
        with tempfile.NamedTemporaryFile(delete=False, prefix=DOWNLOAD_PREFIX) as tmp:
            try:
                size = backend.download(url, tmp, max_bytes=cap)
            except DownloadRefused as exc:
                tmp.close()
                os.unlink(tmp.name)
                if call.output_kind != "lora":
                    raise
                # A trained LoRA is paid for and usable by URL even when we refuse to fetch
                # it (wrong host, too big): keep the result, warn that our backup is missing.
                return Outcome("unstored", status=status, result=result, url=url, error=exc)
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        extra = _transform_output(job, tmp.name)
        return Outcome(
            "completed",
            status=status,
            result=result,
            url=url,
            file_path=tmp.name,
            size=size,
            extra=extra,
        )
    except BackendError as exc:
        if exc.retryable:
            return Outcome("poll_error", status=status, result=result, error=exc)
        return Outcome("remote_failed", status=status, result=result, error=exc)


def _completed_error(backend, call: RemoteCall, status: RemoteStatus) -> BackendError:
    """fal finished the request with an error: its result answer says which (a typed model
    error, a refusal of the input, infrastructure), so that decides whether to try again."""
    try:
        backend.result(call.endpoint, call.request_id)
    except BackendError as exc:
        return exc
    return RemoteUnavailable(f"remote error: {status.error}")


def _transform_output(job: Job, path: str) -> dict[str, Any]:
    """The kind's output_transform (e.g. cuts: a 1024x1024 JPEG), here in the pool thread so
    24 results are processed side by side (Pillow releases the GIL), not one by one later."""
    transform = get_kind(job.kind).hook("output_transform")
    if transform is None:
        return {}
    try:
        return {"ext": transform(path)}
    except Exception as exc:  # an unreadable picture: ask the remote side again
        os.unlink(path)
        raise RemoteUnavailable(f"result file unusable: {exc}") from exc


WEBHOOK_SALT = "webtoon.fal-webhook-call"


def webhook_url(call: RemoteCall | None = None) -> str | None:
    """Where fal reports finished requests, when this site has a public address. The URL
    names our call (signed), so a request whose submit answer was lost can be adopted."""
    base = settings.WEBTOON_PUBLIC_URL.rstrip("/")
    if not base:
        return None
    if call is None or call.pk is None:
        return f"{base}/api/fal/webhook"
    signed = signing.Signer(salt=WEBHOOK_SALT).sign(str(call.pk))
    return f"{base}/api/fal/webhook?{urlencode({'call': signed})}"


def output_url(result: dict[str, Any], output_kind: str) -> str:
    """Where the useful file of a fal result lives."""
    try:
        if output_kind == "lora":
            url = result["diffusers_lora_file"]["url"]
        else:
            url = result["images"][0]["url"]
    except (KeyError, IndexError, TypeError) as exc:
        raise RemoteUnavailable(f"result has no {output_kind} file") from exc
    if not isinstance(url, str) or not url:
        raise RemoteUnavailable(f"result has no {output_kind} file")
    return url


# --- applying outcomes (database, runner thread) ----------------------------------------------
def _apply(call: RemoteCall, outcome: Outcome, job: Job, kind: JobKind) -> bool:
    """Record what the network step found (all but "status": `_apply_status`); True when
    the call reached a final state."""
    now = timezone.now()
    call.last_checked_at = now
    if outcome.kind == "submitted":
        call.request_id, call.state, call.submitted_at = (
            outcome.request_id,
            CallState.SUBMITTED,
            now,
        )
        call.error_code = call.error_message = ""
        call.save()
        CallAttempt.objects.filter(call=call, number=call.attempts).update(
            request_id=outcome.request_id
        )
        account.resume()  # fal took a request: if the account was paused, it works again
        return False
    if isinstance(outcome.error, AccountRefused):
        return _account_refused(call, outcome, now)
    if isinstance(outcome.error, SubmitUnknown):
        message = _(
            "제출 응답을 받지 못해 결과를 알 수 없습니다. "
            "이중 과금을 막기 위해 자동 재제출하지 않았습니다."
        )
        _charge(call, Charge.POSSIBLE, _estimate(call, kind))
        return _fail_unknown_submit(call, message, now)
    if outcome.kind in ("submit_failed", "remote_failed"):
        if outcome.kind == "remote_failed" and _may_be_charged(outcome.error):
            _charge(call, Charge.POSSIBLE, _estimate(call, kind))
        if (decided := _repair(call, outcome.error, kind, now)) is not None:
            return decided
        return _fail_attempt(call, outcome.error, now, retryable=_retryable(outcome))
    if outcome.status is not None:
        _note_status(call, outcome.status, now, kind)
    if outcome.kind == "poll_error":
        call.result = outcome.result
        call.error_message = f"{outcome.error}"  # transient; the next pass tries again
        call.save()
        return False
    if outcome.kind == "completed":
        _store_output(call, outcome, job, kind, now)
        return True
    if outcome.kind == "unstored":
        call.result, call.output_url = outcome.result, outcome.url[:1000]
        _charge(call, Charge.CHARGED, _actual(call, kind, outcome.result))
        call.progress = 1.0
        _finish(call, CallState.SUCCEEDED, outcome.error.code, str(outcome.error)[:2000], now)
        _close_attempt(call, "succeeded_unstored", str(outcome.error))
        return True
    # "status" (still at fal) never comes here: advance_job saves a pass's in one commit.
    raise ValueError(f"unknown network outcome {outcome.kind!r}")


# What a poll that found the call still at fal changes (saved for the pass in one commit).
STATUS_FIELDS = [
    "last_checked_at", "queue_position", "state", "started_at", "logs_seen", "last_log",
    "current_step", "total_steps", "progress",
]


def _apply_status(call: RemoteCall, status: RemoteStatus, kind: JobKind) -> None:
    call.last_checked_at = now = timezone.now()
    _note_status(call, status, now, kind)


def _note_status(call: RemoteCall, status: RemoteStatus, now, kind: JobKind) -> None:
    if status.state == "queued":
        call.queue_position = status.queue_position
        return
    if call.state != CallState.RUNNING:
        call.state, call.started_at = CallState.RUNNING, call.started_at or now
        call.queue_position = None
    logs = status.logs or []
    if logs:
        call.logs_seen = len(logs)
        last = logs[-1]
        call.last_log = str(last.get("message", "") if isinstance(last, dict) else last)[:2000]
    steps = _step_counter(logs, call)
    if steps:
        call.current_step, call.total_steps = steps
        fraction = steps[0] / steps[1]
    else:
        elapsed = (now - (call.started_at or now)).total_seconds()
        fraction = estimate_from_elapsed(elapsed, kind.expected_seconds)
    call.progress = max(call.progress, min(fraction, 0.99))


def _step_counter(logs: list, call: RemoteCall) -> tuple[int, int] | None:
    """The newest "n/total" that is the run's own step counter: when the call asked for a
    number of steps, other counters ("Saving checkpoint 1/3") are skipped, and a reading
    never moves the step back."""
    expected = call.arguments.get("steps") if isinstance(call.arguments, dict) else None
    for entry in reversed(logs):
        steps = steps_from_logs([entry], expected_total=expected)
        if steps is None or (expected and steps[1] != expected):
            continue
        if call.current_step and steps[1] == call.total_steps and steps[0] < call.current_step:
            return None
        return steps
    return None


def _store_output(call: RemoteCall, outcome: Outcome, job: Job, kind: JobKind, now) -> None:
    ext = outcome.extra.get("ext") or (
        "safetensors" if call.output_kind == "lora" else _image_ext(outcome.result, outcome.url)
    )
    # One name per call attempt: a pass that stored the file but died before its transaction
    # committed is redone under the same name, so no unreferenced copy is left behind.
    name = f"{owner_prefix(job.owner_id)}jobs/{job.public_id}/{call.pk}-{call.attempts}.{ext}"
    storage = call.output_file.storage
    try:
        if storage.exists(name):
            storage.delete(name)
        with open(outcome.file_path, "rb") as fh:
            call.output_file.save(name, File(fh), save=False)
    finally:
        os.unlink(outcome.file_path)
    call.result = outcome.result
    call.output_url = outcome.url[:1000]
    _charge(call, Charge.CHARGED, _actual(call, kind, outcome.result))
    if call.output_kind == "lora":
        # A trainer's result is a file fal hosts and we reuse by URL: note its age, so it is
        # re-hosted from our copy before it may expire.
        hosting.remember(
            call.output_url,
            backend_name=call.backend,
            storage_name=call.output_file.name,
            file_name="lora_weights.safetensors",
        )
    call.progress = 1.0
    _finish(call, CallState.SUCCEEDED, "", "", now)
    _close_attempt(call, "succeeded")


# --- what fal may have charged ----------------------------------------------------------------
def _estimate(call: RemoteCall, kind: JobKind) -> Decimal:
    return pricing.estimate(call.endpoint, call.arguments, kind.unit_cost)


def _actual(call: RemoteCall, kind: JobKind, result: dict[str, Any] | None) -> Decimal:
    return pricing.actual(call.endpoint, call.arguments, result, kind.unit_cost)


def _charge(call: RemoteCall, charge: str, cost: Decimal) -> None:
    """Record on the open attempt what fal may have billed for it; the call's cost is the sum
    over its attempts (saved with the call by the caller)."""
    CallAttempt.objects.filter(call=call, number=call.attempts).update(charge=charge, cost=cost)
    call.cost = (call.cost or Decimal("0")) + cost


def _may_be_charged(error: BackendError | None) -> bool:
    """fal ran the request and answered with a 4xx (a 422 model error, a refused input): it
    may have billed the GPU time. 5xx and infrastructure errors are not charged."""
    code = getattr(error, "status_code", None)
    return isinstance(error, RemoteRejected) and code is not None and 400 <= code < 500


def _retryable(outcome: Outcome) -> bool:
    """Only what fal says is retryable or what is infrastructure (5xx, timeouts, a result
    file that vanished) is tried again; a refused input or a validation error never is."""
    error = outcome.error
    if error.retryable:
        return True
    return outcome.kind == "remote_failed" and type(error) is RemoteFileGone


def _account_refused(call: RemoteCall, outcome: Outcome, now) -> bool:
    """The account, not this request, was refused: pause everything; the call waits (its
    attempt is given back) and resumes by itself once fal accepts the account again."""
    account.pause(outcome.error)
    if outcome.kind == "poll_error" or call.request_id:
        call.save()  # in flight already: keep polling it later
        return False
    _close_attempt(call, "account_refused", str(outcome.error))
    call.max_attempts += 1  # not the user's fault: the refusal does not use up a try
    call.state, call.request_id, call.result = CallState.PENDING, None, None
    call.next_attempt_at = None
    call.error_code = call.error_message = ""
    call.save()
    return False


def charge_state(job: Job) -> str:
    """What fal may have billed for the whole job: "none" (safe to say "비용이 청구되지
    않았습니다"), "possible" or "charged"."""
    charges = set(
        CallAttempt.objects.filter(call__job=job).values_list("charge", flat=True).distinct()
    )
    if Charge.CHARGED in charges:
        return Charge.CHARGED
    return Charge.POSSIBLE if Charge.POSSIBLE in charges else Charge.NONE


def _image_ext(result: dict[str, Any] | None, url: str) -> str:
    try:
        content_type = result["images"][0].get("content_type") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        content_type = ""
    if "png" in content_type or url.lower().endswith(".png"):
        return "png"
    if "webp" in content_type or url.lower().endswith(".webp"):
        return "webp"
    return "jpg"


def _repair(call: RemoteCall, error: BackendError, kind: JobKind, now) -> bool | None:
    """Let the job kind fix what made the call fail (once): True/False as _apply returns,
    None when the kind has nothing to say."""
    hook = kind.hook("on_call_error")
    if hook is None or call.repairs >= 1:
        return None
    verdict = hook(call, error)
    if verdict == "retry":
        _close_attempt(call, "repaired", str(error))
        call.repairs += 1
        call.max_attempts += 1  # transparent: the repair does not use up a retry
        call.state, call.request_id, call.result = CallState.PENDING, None, None
        call.next_attempt_at, call.queue_position = None, None
        call.error_code = call.error_message = ""
        call.save()
        return False
    if verdict == "fail":
        _close_attempt(call, call.error_code or error.code, str(error))
        _finish(call, CallState.FAILED, call.error_code, call.error_message, now)
        return True
    return None


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: base, 2*base, 4*base ... capped."""
    base = settings.JOB_BACKOFF_BASE_SECONDS * (2 ** max(0, attempt - 1))
    return min(settings.JOB_BACKOFF_MAX_SECONDS, base) * random.uniform(0.8, 1.2)


def _fail_attempt(call: RemoteCall, error: BackendError, now, *, retryable: bool) -> bool:
    _close_attempt(call, error.code, str(error))
    call.error_code, call.error_message = error.code, str(error)[:2000]
    if retryable and call.attempts < call.max_attempts:
        call.state, call.request_id, call.result = CallState.PENDING, None, None
        call.next_attempt_at = now + timedelta(seconds=backoff_seconds(call.attempts))
        call.queue_position = None
        call.save()
        return False
    _finish(call, CallState.FAILED, error.code, str(error)[:2000], now)
    return True


def _finish(call: RemoteCall, state: str, code: str, message: str, now) -> None:
    call.state, call.finished_at = state, now
    if code:
        call.error_code, call.error_message = code, message
    call.save()
    if state != CallState.SUCCEEDED and not call.output_file:
        _drop_stray_outputs(call)


def _drop_stray_outputs(call: RemoteCall) -> None:
    """A pass that stored this call's output but was killed before its transaction committed
    left the object under the per-attempt name (_store_output); a call that ends without
    output must not keep it (found by `make soak-cluster`: calls failed by their deadline)."""
    job = call.job
    folder = f"{owner_prefix(job.owner_id)}jobs/{job.public_id}"
    storage = call.output_file.storage
    try:
        _dirs, files = storage.listdir(folder)
    except OSError:  # no folder: nothing was stored
        return
    for name in files:
        if name.startswith(f"{call.pk}-"):
            storage.delete(f"{folder}/{name}")


def _close_attempt(call: RemoteCall, outcome: str, message: str = "") -> None:
    CallAttempt.objects.filter(call=call, number=call.attempts, finished_at__isnull=True).update(
        outcome=outcome, error_message=message[:2000], finished_at=timezone.now()
    )


def _refresh(job: Job, kind: JobKind) -> None:
    calls = list(job.calls.all())
    if not calls:
        return
    done = [c for c in calls if c.state in TERMINAL_CALL_STATES]
    progress = sum(1.0 if c.is_terminal else c.progress for c in calls) / len(calls)
    job.progress = max(job.progress, min(progress, 1.0 if len(done) == len(calls) else 0.99))
    job.cost_recorded = sum((c.cost for c in calls), Decimal("0"))
    if len(done) < len(calls):
        return
    failed = [c for c in calls if c.state != CallState.SUCCEEDED]
    ok = len(calls) - len(failed)
    job.finished_at = timezone.now()
    if not failed or (ok and kind.partial_ok):
        job.state = JobState.SUCCEEDED
        job.error_code = ""
        job.error_message = f"{len(failed)}개 실패" if failed else ""
    else:
        job.state = JobState.FAILED
        job.error_code = failed[0].error_code or "failed"
        job.error_message = failed[0].error_message
    job.progress = 1.0


# --- support and user actions -----------------------------------------------------------------
def retry_job(job: Job, *, waiting: bool = False, limited: bool = False) -> Job:
    """Run a finished job's failed calls again (fresh attempts, new deadline).

    `waiting`: hold it (WAITING) instead of starting it, for per-user limits.
    `limited`: the owner asked for it, so it counts against the owner's limits like a new
    job (limits.retry_cost); support passes False."""
    kind = get_kind(job.kind)
    with transaction.atomic():
        if limited:
            limits.check_costly(job.owner, limits.retry_cost(job, kind.unit_cost))
        job = Job.objects.select_for_update().get(pk=job.pk)
        if limited:
            job.subject = limits.mark(job.subject, retry=True)
        job.calls.filter(state__in=(CallState.FAILED, CallState.CANCELLED)).update(
            state=CallState.PENDING,
            # Attempts keep counting (history numbers stay unique); the retry gets a fresh
            # allowance on top of what was spent.
            max_attempts=F("attempts") + kind.max_attempts,
            request_id=None,
            result=None,
            next_attempt_at=None,
            error_code="",
            error_message="",
            progress=0,
            # A fresh run counts its steps from 0 (the step counter never moves back).
            current_step=None,
            total_steps=None,
            finished_at=None,
        )
        job.state = JobState.WAITING if waiting else JobState.QUEUED
        job.error_code, job.error_message = "", ""
        job.finished_at, job.locked_until = None, None
        job.deadline_at = timezone.now() + timedelta(seconds=kind.deadline_seconds)
        job.progress = 0
        job.save()
        if not waiting:
            enqueue(job)
    return job


def mark_refunded(job: Job, *, by) -> Job:
    if job.refunded_at is None:
        job.refunded_at, job.refunded_by = timezone.now(), by
        job.save(update_fields=["refunded_at", "refunded_by"])
    return job


def request_refresh(job: Job) -> bool:
    """Called by status reads: enqueue one pass if nobody looked at the job for a while.

    The claim is a conditional UPDATE on last_checked_at, so many watchers cause one pass.
    """
    if job.is_terminal or job.state == JobState.WAITING:
        return False
    now = timezone.now()
    stale = now - timedelta(seconds=REFRESH_AFTER_SECONDS)
    if (job.last_checked_at and job.last_checked_at >= stale) or (
        job.locked_until and job.locked_until >= now
    ):
        return False  # looked at recently or a runner holds it: no write (SQLite locks on it)
    seen = Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=stale)
    free = _lease_free(now)
    claimed = Job.objects.filter(seen, free, pk=job.pk).update(last_checked_at=now)
    if claimed:
        async_task(RUN_JOB_TASK, job.pk)
    return bool(claimed)


def poke(job: Job) -> bool:
    """Look at a job now (a verified webhook said it finished), unless a runner holds it."""
    if job.is_terminal or job.state == JobState.WAITING:
        return False
    claimed = Job.objects.filter(_lease_free(timezone.now()), pk=job.pk).update(
        last_checked_at=timezone.now()
    )
    if claimed:
        async_task(RUN_JOB_TASK, job.pk)
    return bool(claimed)


def sweep_stale_downloads(now: float | None = None) -> int:
    """Delete temp downloads a killed worker left behind (older than an hour: no live pass
    holds a download that long)."""
    now = now or time.time()
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{DOWNLOAD_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_DOWNLOAD_SECONDS:
                path.unlink()
                removed += 1
    return removed


def reconcile(*, quiet_only: bool = True) -> int:
    """Periodic: enqueue a pass for every unfinished job that no runner holds (and clear the
    temp downloads of workers that died). `quiet_only=False`: also the jobs looked at in
    the last seconds (the account works again: everything waiting goes now)."""
    sweep_stale_downloads()
    now = timezone.now()
    free = _lease_free(now)
    quiet = Q(last_checked_at__isnull=True) | Q(
        last_checked_at__lt=now - timedelta(seconds=REFRESH_AFTER_SECONDS)
    )
    ids = list(
        Job.objects.exclude(state__in=(*TERMINAL_JOB_STATES, JobState.WAITING))
        .filter(free, quiet if quiet_only else Q())
        .values_list("pk", flat=True)
    )
    # The ORM broker's INSERTs committed one by one, each after a reconnect check (issue 19:
    # 15 s for 1,000 on SQLite): they go in as bulk INSERTs, a transaction per batch. With
    # the queue run inline (sync), each task runs at once and stays outside any transaction.
    broker = None if QConf.SYNC else get_broker()
    for start in range(0, len(ids), RECONCILE_BATCH):
        batch = ids[start : start + RECONCILE_BATCH]
        if isinstance(broker, OrmBroker):
            _enqueue_orm(broker, batch)
            continue
        with contextlib.nullcontext() if QConf.SYNC else transaction.atomic():
            for job_id in batch:
                async_task(RUN_JOB_TASK, job_id)
    return len(ids)


RECONCILE_BATCH = 250


class _Packages:
    """A broker for async_task that keeps the signed task packages it is given."""

    def __init__(self, list_key: str) -> None:
        self.list_key = list_key
        self.packages: list[str] = []

    def enqueue(self, package: str) -> None:
        self.packages.append(package)


def _enqueue_orm(broker: OrmBroker, job_ids: list[int]) -> None:
    """run_job for each job in one bulk INSERT into the ORM broker's queue: the rows its
    enqueue() would write one by one (key, signed package, lock = now)."""
    packages = _Packages(broker.list_key)
    for job_id in job_ids:
        async_task(RUN_JOB_TASK, job_id, broker=packages)
    now = timezone.now()
    key = broker.list_key or QConf.CLUSTER_NAME
    with transaction.atomic():
        OrmQ.objects.bulk_create([OrmQ(key=key, payload=p, lock=now) for p in packages.packages])


def create_image_job(user, prompt: str, image_size: str = "square_hd") -> Job:
    """One prompt-only image on the LoRA endpoint (no LoRA): the smallest real job."""
    spec = CallSpec(
        endpoint=settings.FAL_ENDPOINTS["lora"],
        arguments={
            "prompt": prompt,
            "image_size": image_size,
            "num_inference_steps": settings.INFERENCE_STEPS,
            "num_images": 1,
            "enable_safety_checker": True,
        },
    )
    return create_job(owner=user, kind="image", calls=[spec], limited=True)
