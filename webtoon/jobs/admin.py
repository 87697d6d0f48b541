"""Back office for jobs and remote calls: who paid for what, what failed and why."""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from webtoon.media import media_url

from . import services
from .models import CallAttempt, Job, RemoteCall

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
    "output_preview",
)


def _preview(call: RemoteCall):
    if not call.output_file:
        return "-"
    url = media_url(call.output_file.name)
    if call.output_kind == "image":
        return format_html('<a href="{}"><img src="{}" width="96" loading="lazy"></a>', url, url)
    return format_html('<a href="{}">{}</a>', url, call.output_file.name.rsplit("/", 1)[-1])


class RemoteCallInline(admin.TabularInline):
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


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "kind",
        "owner",
        "state",
        "progress_percent",
        "cost_estimated",
        "cost_recorded",
        "error_code",
        "refunded_at",
        "created_at",
    )
    list_filter = (
        "state",
        "kind",
        "error_code",
        ("owner", admin.RelatedOnlyFieldListFilter),
        "created_at",
    )
    search_fields = ("public_id", "owner__username", "owner__email", "calls__request_id")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "refunded_by")
    inlines = [RemoteCallInline]
    actions = ["retry", "mark_refunded"]
    readonly_fields = (
        "public_id",
        "owner",
        "kind",
        "state",
        "subject",
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

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("진행률"), ordering="progress")
    def progress_percent(self, obj: Job) -> str:
        return f"{obj.progress * 100:.0f}%"

    @admin.action(description=_("선택한 실패 작업 다시 실행"))
    def retry(self, request, queryset):
        failed = [job for job in queryset if job.state == "failed"]
        for job in failed:
            services.retry_job(job)
        self.message_user(request, _("%(n)d개 작업을 다시 실행합니다.") % {"n": len(failed)})

    @admin.action(description=_("선택한 작업 환불 처리"))
    def mark_refunded(self, request, queryset):
        for job in queryset:
            services.mark_refunded(job, by=request.user)
        self.message_user(request, _("%(n)d개 작업을 환불 처리했습니다.") % {"n": queryset.count()})


class CallAttemptInline(admin.TabularInline):
    model = CallAttempt
    extra = 0
    can_delete = False
    readonly_fields = (
        "number",
        "request_id",
        "outcome",
        "error_message",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RemoteCall)
class RemoteCallAdmin(admin.ModelAdmin):
    list_display = (
        "endpoint",
        "slot",
        "job",
        "state",
        "request_id",
        "attempts",
        "cost",
        "error_code",
        "submitted_at",
        "finished_at",
    )
    list_filter = ("state", "endpoint", "backend", "error_code")
    search_fields = ("request_id", "job__public_id", "job__owner__username")
    list_select_related = ("job",)
    readonly_fields = (*CALL_FIELDS, "job", "arguments", "result", "output_file", "output_url")
    fields = readonly_fields
    inlines = [CallAttemptInline]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("결과"))
    def output_preview(self, obj):
        return _preview(obj)
