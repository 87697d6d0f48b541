"""Back office for jobs and remote calls: who paid for what, what failed and why.

Support staff (the "support" group) view everything and may retry and refund; only
superusers change raw fields. The failures and spend pages hang off the job admin."""

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from webtoon import backoffice
from webtoon.exceptions import DomainError
from webtoon.media import media_url

from . import account, services
from .models import CallAttempt, FalAccount, HostedFile, Job, JobState, RemoteCall

CALL_FIELDS = (
    "slot",
    "endpoint",
    "backend",
    "state",
    "request_id",
    "attempts",
    "max_attempts",
    "queue_position",
    "progress",
    "current_step",
    "total_steps",
    "cost",
    "error_code",
    "error_message",
    "last_log",
    "submitted_at",
    "started_at",
    "finished_at",
    "duration",
    "output_preview",
)

# Kinds whose retry goes through their own domain (a failed training moves its character
# back to "training" under the owner's training limit); dotted paths, like the kinds' hooks.
RETRY_HANDLERS = {"training": "characters.support.retry_job"}

# What a job's subject points at, and where that lives in the admin.
SUBJECT_ADMIN = {
    "character": "admin:characters_character_change",
    "session": "admin:characters_creationsession_change",
    "scene": "admin:scenes_scene_change",
}


def _preview(call: RemoteCall):
    if not call.output_file:
        return "-"
    if call.output_kind == "image":
        return backoffice.thumb(call.output_file.name, width=96)
    url = media_url(call.output_file.name)
    return format_html('<a href="{}">{}</a>', url, call.output_file.name.rsplit("/", 1)[-1])


def _duration(call: RemoteCall) -> str:
    if not (call.started_at or call.submitted_at) or not call.finished_at:
        return "-"
    seconds = (call.finished_at - (call.started_at or call.submitted_at)).total_seconds()
    return f"{seconds:.1f}s"


class RemoteCallInline(backoffice.BackofficeInline):
    model = RemoteCall
    extra = 0
    can_delete = False
    fields = CALL_FIELDS
    readonly_fields = CALL_FIELDS
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("결과"))
    def output_preview(self, obj):
        return _preview(obj)

    @admin.display(description=_("소요"))
    def duration(self, obj):
        return _duration(obj)


class RefundedFilter(admin.SimpleListFilter):
    title = _("환불")
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return (("yes", _("환불됨")), ("no", _("환불 안 됨")))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(refunded_at__isnull=self.value() == "no")
        return queryset


@admin.register(Job)
class JobAdmin(backoffice.BackofficeAdmin):
    list_display = (
        "public_id",
        "kind",
        "owner_display",
        "state",
        "progress_percent",
        "call_count",
        "cost_estimated",
        "cost_recorded",
        "error_code",
        "refund_display",
        "created_at",
    )
    list_filter = ("state", "kind", "error_code", RefundedFilter, "created_at")
    search_fields = ("public_id", "owner__username", "owner__email", "calls__request_id")
    search_help_text = _("작업 ID, 사용자 이름·이메일, fal 요청 ID로 찾습니다.")
    date_hierarchy = "created_at"
    list_select_related = ("owner", "refunded_by")
    show_full_result_count = False  # no second COUNT(*) over every job
    raw_id_fields = ("owner", "refunded_by")
    inlines = [RemoteCallInline]
    actions = ["retry", "mark_refunded"]
    detail_actions = ("retry", "mark_refunded")
    fieldsets = (
        (None, {"fields": ("public_id", "owner", "kind", "state", "subject_links", "progress")}),
        (_("비용·환불"), {"fields": ("cost_estimated", "cost_recorded", "refunded_at",
                                  "refunded_by")}),
        (_("오류"), {"fields": ("error_code", "error_message")}),
        (_("시각"), {"fields": ("created_at", "started_at", "finished_at", "deadline_at",
                              "locked_until", "last_checked_at")}),
        (_("원본"), {"fields": ("subject",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "public_id",
        "owner",
        "kind",
        "state",
        "subject",
        "subject_links",
        "progress",
        "deadline_at",
        "locked_until",
        "last_checked_at",
        "cost_estimated",
        "cost_recorded",
        "error_code",
        "error_message",
        "refunded_at",
        "refunded_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(call_count=Count("calls"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("failures/", view(self.failures_view), name="jobs_job_failures"),
            path("spend/", view(self.spend_view), name="jobs_job_spend"),
            path("thumb/<path:name>", view(backoffice.thumbnail), name="thumbnail"),
            *super().get_urls(),
        ]

    def failures_view(self, request):
        return backoffice.failures_view(self, request)

    def spend_view(self, request):
        return backoffice.spend_view(self, request)

    def has_add_permission(self, request):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm("jobs.retry_job")

    def has_refund_permission(self, request):
        return request.user.has_perm("jobs.refund_job")

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj: Job):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("진행률"), ordering="progress")
    def progress_percent(self, obj: Job) -> str:
        return f"{obj.progress * 100:.0f}%"

    @admin.display(description=_("호출"), ordering="call_count")
    def call_count(self, obj: Job) -> int:
        return obj.call_count

    @admin.display(description=_("환불"), ordering="refunded_at")
    def refund_display(self, obj: Job):
        if obj.refunded_at is None:
            return "-"
        by = obj.refunded_by.username if obj.refunded_by else "?"
        return format_html("{}<br><small>{}</small>", obj.refunded_at.strftime("%Y-%m-%d %H:%M"),
                           by)

    @admin.display(description=_("대상"))
    def subject_links(self, obj: Job):
        links = [
            (reverse(SUBJECT_ADMIN[key], args=[value]), key, value)
            for key, value in (obj.subject or {}).items()
            if key in SUBJECT_ADMIN and isinstance(value, int)
        ]
        return format_html_join(", ", '<a href="{}">{} #{}</a>', links) or "-"

    @admin.action(description=_("선택한 실패 작업 다시 실행"), permissions=["retry"])
    def retry(self, request, queryset):
        retried, refused = [], []
        for job in queryset.filter(state=JobState.FAILED):
            handler = RETRY_HANDLERS.get(job.kind)
            try:
                (import_string(handler) if handler else services.retry_job)(job)
            except DomainError as exc:
                refused.append(f"{job.public_id}: {exc}")
                continue
            retried.append(job)
        self.record(request, retried, "다시 실행 (지원)")
        for line in refused:
            self.message_user(request, line, messages.ERROR)
        return self.finish(
            request, retried or queryset, _("%(n)d개 작업을 다시 실행합니다.") % {"n": len(retried)}
        )

    @admin.action(description=_("선택한 작업 환불 처리"), permissions=["refund"])
    def mark_refunded(self, request, queryset):
        jobs = list(queryset)
        fresh = [job for job in jobs if job.refunded_at is None]
        for job in jobs:
            services.mark_refunded(job, by=request.user)
        self.record(request, fresh, "환불 처리")
        return self.finish(
            request, jobs, _("%(n)d개 작업을 환불 처리했습니다.") % {"n": len(jobs)}
        )


class CallAttemptInline(backoffice.BackofficeInline):
    model = CallAttempt
    extra = 0
    can_delete = False
    readonly_fields = (
        "number",
        "request_id",
        "outcome",
        "charge",
        "cost",
        "error_message",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RemoteCall)
class RemoteCallAdmin(backoffice.BackofficeAdmin):
    list_display = (
        "endpoint",
        "slot",
        "job",
        "owner_display",
        "state",
        "request_id",
        "attempts",
        "cost",
        "error_code",
        "submitted_at",
        "finished_at",
        "duration",
    )
    list_filter = ("state", "endpoint", "backend", "error_code")
    search_fields = ("request_id", "job__public_id", "job__owner__username", "job__owner__email")
    list_select_related = ("job", "job__owner")
    show_full_result_count = False
    readonly_fields = (*CALL_FIELDS, "job", "arguments", "result", "output_file", "output_url")
    fields = readonly_fields
    inlines = [CallAttemptInline]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("사용자"), ordering="job__owner__username")
    def owner_display(self, obj: RemoteCall):
        return backoffice.owner_cell(obj.job.owner)

    @admin.display(description=_("결과"))
    def output_preview(self, obj):
        return _preview(obj)

    @admin.display(description=_("소요"))
    def duration(self, obj):
        return _duration(obj)


@admin.register(FalAccount)
class FalAccountAdmin(backoffice.BackofficeAdmin):
    """The shared fal account's circuit breaker: why it paused, when it last probed."""

    list_display = ("__str__", "paused_at", "status_code", "last_probe_at", "resumed_at", "pauses")
    readonly_fields = (
        "paused_at",
        "reason",
        "status_code",
        "last_probe_at",
        "alerted_at",
        "resumed_at",
        "pauses",
    )
    fields = readonly_fields
    actions = ["resume_now"]
    detail_actions = ("resume_now",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("지금 다시 시작 (fal 문제를 해결한 뒤)"), permissions=["change"])
    def resume_now(self, request, queryset):
        if account.resume():
            self.message_user(request, _("생성을 다시 시작했습니다. 대기 중인 작업이 이어집니다."))
        else:
            self.message_user(request, _("멈춰 있지 않습니다."), messages.WARNING)


@admin.register(HostedFile)
class HostedFileAdmin(admin.ModelAdmin):
    """Our files hosted on fal and when: re-uploaded before reuse once too old."""

    formfield_overrides = backoffice.URL_INPUTS

    list_display = ("storage_name", "backend", "uploaded_at", "url", "replaced_by")
    search_fields = ("storage_name", "url")
    readonly_fields = (
        "backend",
        "url",
        "storage_name",
        "content_type",
        "file_name",
        "uploaded_at",
        "replaced_by",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False
