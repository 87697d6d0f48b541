"""Work done by an external service (fal.ai or the offline backend).

A *job* is one piece of user-visible work (24 cuts, one training, one scene); it owns one or
more *remote calls*, each one request to the backend. Every remote call is a row before
anything waits on it: its state goes PENDING -> SUBMITTING -> SUBMITTED (request_id saved)
-> SUCCEEDED/FAILED, so a worker that dies resumes from the saved request id instead of
paying for the same work twice.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobState(models.TextChoices):
    # Held back by a per-user limit (e.g. 2 trainings at once); nothing runs it until a
    # slot frees and the domain releases it.
    WAITING = "waiting", _("순서 대기")
    QUEUED = "queued", _("대기 중")
    RUNNING = "running", _("진행 중")
    SUCCEEDED = "succeeded", _("완료")
    FAILED = "failed", _("실패")
    CANCELLED = "cancelled", _("취소됨")


TERMINAL_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class CallState(models.TextChoices):
    PENDING = "pending", _("제출 대기")
    SUBMITTING = "submitting", _("제출 중")
    SUBMITTED = "submitted", _("대기열")
    # The submit's answer was lost (fal may have queued it) and fal's webhook may still name
    # it: kept, never resubmitted, until the webhook adopts it or the deadline fails it.
    ORPHANED = "orphaned", _("응답 확인 중")
    RUNNING = "running", _("처리 중")
    SUCCEEDED = "succeeded", _("완료")
    FAILED = "failed", _("실패")
    CANCELLED = "cancelled", _("취소됨")


ACTIVE_CALL_STATES = (CallState.SUBMITTED, CallState.RUNNING)
# Requests that hold (or may hold) one of the account's slots at fal.
IN_FLIGHT_CALL_STATES = (
    CallState.SUBMITTING,
    CallState.SUBMITTED,
    CallState.RUNNING,
    CallState.ORPHANED,
)
TERMINAL_CALL_STATES = (CallState.SUCCEEDED, CallState.FAILED, CallState.CANCELLED)


class Job(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(_("종류"), max_length=40, db_index=True)
    state = models.CharField(
        _("상태"), max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    # What the job is about, for the domain hooks (e.g. {"session": 12}); primitives only.
    subject = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(_("진행률"), default=0.0)
    deadline_at = models.DateTimeField(_("마감 시각"), null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    cost_estimated = models.DecimalField(
        _("예상 비용($)"), max_digits=8, decimal_places=3, default=0
    )
    cost_recorded = models.DecimalField(
        _("기록 비용($)"), max_digits=8, decimal_places=3, default=0
    )
    error_code = models.CharField(_("오류 원인"), max_length=40, blank=True, db_index=True)
    error_message = models.TextField(_("오류 메시지"), blank=True)
    refunded_at = models.DateTimeField(_("환불 시각"), null=True, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("작업")
        verbose_name_plural = _("작업")
        indexes = [models.Index(fields=["state", "locked_until"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


class RemoteCall(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="calls")
    # Position inside its job (cut number, sample number, ...).
    slot = models.PositiveIntegerField(default=0)
    endpoint = models.CharField(_("엔드포인트"), max_length=120)
    arguments = models.JSONField(default=dict)
    # What to keep from the result: "image" (images[0]) or "lora" (diffusers_lora_file).
    output_kind = models.CharField(max_length=16, default="image")
    backend = models.CharField(max_length=16)
    state = models.CharField(
        _("상태"),
        max_length=16,
        choices=CallState.choices,
        default=CallState.PENDING,
        db_index=True,
    )
    request_id = models.CharField(_("요청 ID"), max_length=100, null=True, blank=True, unique=True)
    attempts = models.PositiveSmallIntegerField(_("시도"), default=0)
    # Times a domain hook repaired the arguments after an error (e.g. an expired LoRA URL
    # re-uploaded from our copy); bounded so a repair is tried once, not forever.
    repairs = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    queue_position = models.IntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    current_step = models.PositiveIntegerField(null=True, blank=True)
    total_steps = models.PositiveIntegerField(null=True, blank=True)
    logs_seen = models.PositiveIntegerField(default=0)
    last_log = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    output_file = models.FileField(max_length=300, blank=True)
    output_url = models.URLField(max_length=1000, blank=True)
    cost = models.DecimalField(_("비용($)"), max_digits=8, decimal_places=3, default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "slot", "pk"]
        verbose_name = _("원격 호출")
        verbose_name_plural = _("원격 호출")

    def __str__(self) -> str:
        return f"{self.endpoint} #{self.slot} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_CALL_STATES


class Charge(models.TextChoices):
    """What fal may have billed for one attempt (fal's FAQ: 5xx are not charged, a 422 may
    be; a request refused at submit or cancelled while queued never ran)."""

    NONE = "none", _("청구 없음")
    POSSIBLE = "possible", _("청구되었을 수 있음")
    CHARGED = "charged", _("청구됨")


class CallAttempt(models.Model):
    """One submit of a remote call: kept so support can see every paid request."""

    call = models.ForeignKey(RemoteCall, on_delete=models.CASCADE, related_name="history")
    number = models.PositiveSmallIntegerField()
    request_id = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=40, blank=True)
    charge = models.CharField(max_length=10, choices=Charge.choices, default=Charge.NONE)
    cost = models.DecimalField(_("비용($)"), max_digits=8, decimal_places=3, default=0)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["call", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of call {self.call_id} ({self.outcome or 'open'})"


class FalAccount(models.Model):
    """The one fal account all users share (a single row, pk=1): the circuit breaker that
    stops every submit while fal refuses the account (401 wrong key, 403 "User is locked"),
    and the row submitters lock to count the account's slots."""

    paused_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_probe_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    pauses = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("fal 계정 상태")
        verbose_name_plural = _("fal 계정 상태")

    def __str__(self) -> str:
        return f"fal account ({'paused' if self.paused_at else 'working'})"


class HostedFile(models.Model):
    """A file of ours hosted where a backend can fetch it (the photo, a training ZIP, a LoRA):
    when it was uploaded, so it is uploaded again before reuse once it may have expired
    (FAL_UPLOAD_MAX_AGE_SECONDS; fal keeps media "at least 7 days")."""

    backend = models.CharField(max_length=16)
    url = models.URLField(max_length=1000, unique=True)
    storage_name = models.CharField(max_length=300, db_index=True)
    content_type = models.CharField(max_length=100)
    file_name = models.CharField(max_length=100)
    uploaded_at = models.DateTimeField(default=timezone.now)
    replaced_by = models.URLField(max_length=1000, blank=True)

    class Meta:
        verbose_name = _("호스팅된 파일")
        verbose_name_plural = _("호스팅된 파일")

    def __str__(self) -> str:
        return f"{self.storage_name} @ {self.backend}"
