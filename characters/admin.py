"""Back office for characters, creation sessions and photos (support staff).

Actions call the app's own domain functions (training.start_samples,
lora_files.reupload_current, management.undelete_character, management.purge_character),
are limited by permission (support: everything but purge) and are logged."""

import io
import mimetypes

from django.contrib import admin, messages
from django.core.cache import cache
from django.db.models import Avg, Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from webtoon import backoffice
from webtoon.imaging import BackendError
from webtoon.jobs.models import Job

from . import lora_files, management, support, training
from .enums import CharacterStatus
from .models import Character, CharacterVersion, CreationSession, Cut, Photo, Sample


def _job_table(jobs) -> str:
    rows = [
        (
            reverse("admin:jobs_job_change", args=[job.pk]),
            job.kind,
            job.get_state_display(),
            job.error_code or "-",
            f"{job.cost_estimated} / {job.cost_recorded}",
            job.created_at.strftime("%Y-%m-%d %H:%M"),
        )
        for job in jobs
    ]
    if not rows:
        return "-"
    body = format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        rows,
    )
    return format_html(
        '<table data-testid="jobs"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
        "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
        _("종류"),
        _("상태"),
        _("오류 원인"),
        _("비용 예상/기록($)"),
        _("생성"),
        body,
    )


class VersionInline(backoffice.BackofficeInline):
    model = CharacterVersion
    extra = 0
    can_delete = False
    fields = (
        "number",
        "lora_url",
        "lora_file",
        "lora_file_backed_up",
        "training_images_count",
        "training_steps",
        "trained_at",
        "training_job_link",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("training_job")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("학습 작업"))
    def training_job_link(self, obj):
        job = obj.training_job
        return backoffice.admin_link(
            job, f"{job.get_state_display()} · {job.public_id}" if job else None
        )


class SampleInline(backoffice.BackofficeInline):
    model = Sample
    extra = 0
    can_delete = False
    fields = ("number", "version", "prompt", "similarity", "preview")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("version")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("이미지"))
    def preview(self, obj):
        return backoffice.thumb(obj.image.name)


class BackedUpFilter(admin.SimpleListFilter):
    title = _("LoRA 백업")
    parameter_name = "backed_up"

    def lookups(self, request, model_admin):
        return (("yes", _("우리 저장소에 있음")), ("no", _("없음 (fal URL만)")))

    def queryset(self, request, queryset):
        stored = Q(lora_file_backed_up=True) & ~Q(lora_file="")
        if self.value() == "yes":
            return queryset.filter(stored)
        if self.value() == "no":
            return queryset.exclude(stored)
        return queryset


class DeletedFilter(admin.SimpleListFilter):
    title = _("삭제")
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return (("yes", _("삭제됨 (영구 삭제 대기)")), ("no", _("삭제 안 됨")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=CharacterStatus.DELETED)
        if self.value() == "no":
            return queryset.exclude(status=CharacterStatus.DELETED)
        return queryset


@admin.register(Character)
class CharacterAdmin(backoffice.BackofficeAdmin):
    list_display = (
        "name",
        "photo_thumb",
        "owner_display",
        "trigger_word",
        "style_id",
        "status",
        "version_number",
        "backup_status",
        "created_at",
        "trained_at",
    )
    list_display_links = ("name",)
    list_filter = ("status", "style_id", BackedUpFilter, DeletedFilter, "created_at")
    search_fields = ("name", "trigger_word", "owner__username", "owner__email")
    search_help_text = _("이름, 트리거 워드, 사용자 이름·이메일로 찾습니다.")
    list_select_related = ("owner", "current_version", "photo")
    raw_id_fields = ("owner", "session", "photo", "training_job", "samples_job", "current_version")
    readonly_fields = (
        "public_id",
        "trigger_word",
        "lora_url",
        "lora_file",
        "lora_file_backed_up",
        "training_data",
        "training_data_url",
        "photo_preview",
        "training_images",
        "samples_preview",
        "jobs",
        "session_link",
        "created_at",
        "training_started_at",
        "trained_at",
        "deleted_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "owner",
                    "name",
                    "trigger_word",
                    "style_id",
                    "custom_prompt",
                    "status",
                    "failure_message",
                    "lora_scale_default",
                )
            },
        ),
        (
            _("사진·학습 이미지·테스트 이미지"),
            {"fields": ("photo_preview", "session_link", "training_images", "samples_preview")},
        ),
        (
            _("LoRA·백업"),
            {
                "fields": (
                    "current_version",
                    "lora_url",
                    "lora_file",
                    "lora_file_backed_up",
                    "local_backup_path",
                    "training_data",
                    "training_data_url",
                )
            },
        ),
        (_("작업"), {"fields": ("jobs",)}),
        (_("시각"), {"fields": ("created_at", "training_started_at", "trained_at", "deleted_at")}),
        (
            _("원본 연결"),
            {
                "fields": ("session", "photo", "training_job", "samples_job"),
                "classes": ("collapse",),
            },
        ),
    )
    inlines = (VersionInline, SampleInline)
    actions = ("rerun_samples", "reupload_lora", "undelete", "purge_now")
    detail_actions = actions

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # purge_now: files too, and a confirmation
        return actions

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/training-image/<str:name>",
                view(self.training_image_view),
                name="characters_character_training_image",
            ),
            *super().get_urls(),
        ]

    # --- permissions: the support group has these; purge needs delete (superusers) -----------
    def has_rerun_samples_permission(self, request):
        return request.user.has_perm("characters.rerun_samples")

    def has_reupload_permission(self, request):
        return request.user.has_perm("characters.reupload_lora")

    def has_undelete_permission(self, request):
        return request.user.has_perm("characters.undelete_character")

    # Deleting from the admin purges (rows and files), as the daily purge does.
    def delete_model(self, request, obj):
        management.purge_character(obj)

    def delete_queryset(self, request, queryset):
        for character in queryset:
            management.purge_character(character)

    # --- columns -----------------------------------------------------------------------------
    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("사진"))
    def photo_thumb(self, obj):
        return backoffice.thumb(obj.photo.image.name if obj.photo else None, width=48)

    @admin.display(description=_("버전"), ordering="current_version__number")
    def version_number(self, obj):
        return f"v{obj.current_version.number}" if obj.current_version else "-"

    @admin.display(description=_("LoRA 백업"), boolean=True)
    def backup_status(self, obj):
        if not obj.lora_url and not obj.lora_file:
            return None
        return bool(obj.lora_file) and obj.lora_file_backed_up

    # --- detail ------------------------------------------------------------------------------
    @admin.display(description=_("원본 사진"))
    def photo_preview(self, obj):
        if not obj.photo:
            return "-"
        consent = formats.localize(timezone.localtime(obj.photo.consent_at))
        return format_html(
            "{} <small>{}: {}</small>",
            backoffice.thumb(obj.photo.image.name, width=128),
            _("사용 권리 동의"),
            consent,
        )

    @admin.display(description=_("생성 세션"))
    def session_link(self, obj):
        return backoffice.admin_link(obj.session) if obj.session_id else "-"

    @admin.display(description=_("학습 이미지 (ZIP)"))
    def training_images(self, obj):
        names = support.training_image_names(obj)
        if not names:
            return "-"
        src = [
            reverse("admin:characters_character_training_image", args=[obj.pk, n]) for n in names
        ]
        return format_html_join(
            " ",
            '<a href="{}?full=1" target="_blank" title="{}">'
            '<img src="{}" width="64" loading="lazy" alt="{}"></a>',
            ((url, name, url, name) for url, name in zip(src, names, strict=True)),
        )

    @admin.display(description=_("테스트 이미지"))
    def samples_preview(self, obj):
        samples = [s for s in training.current_samples(obj) if s.image]
        if not samples:
            return "-"
        return format_html_join(" ", "{}", ((backoffice.thumb(s.image.name),) for s in samples))

    @admin.display(description=_("이 캐릭터의 작업"))
    def jobs(self, obj):
        return _job_table(support.character_jobs(obj))

    def training_image_view(self, request, pk, name):
        character = get_object_or_404(Character, pk=pk)
        if not self.has_view_permission(request, character):
            raise Http404
        if request.GET.get("full"):
            data = support.read_training_image(character, name)
            if data is None:
                raise Http404
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return HttpResponse(data, content_type=kind)
        zip_file = support.training_zip(character)
        if zip_file is None:
            raise Http404
        key = f"backoffice:zip-thumb:{support.zip_cache_key(character, zip_file)}:{name}"
        small = cache.get(key)
        if small is None:
            data = support.read_training_image(character, name)
            if data is None:
                raise Http404
            small = backoffice.small_jpeg(io.BytesIO(data))
            cache.set(key, small, support.ZIP_CACHE_SECONDS)
        return backoffice.jpeg_response(small)

    # --- actions -----------------------------------------------------------------------------
    @admin.action(description=_("테스트 이미지 다시 만들기"), permissions=["rerun_samples"])
    def rerun_samples(self, request, queryset):
        ready = list(queryset.filter(status=CharacterStatus.ACTIVE, current_version__isnull=False))
        for character in ready:
            job = training.start_samples(character)
            self.record(request, [character], f"테스트 이미지 다시 만들기 (작업 {job.public_id})")
        return self.finish(
            request,
            ready or queryset,
            _("%d개 캐릭터의 테스트 이미지를 다시 만듭니다.") % len(ready),
        )

    @admin.action(
        description=_("저장된 LoRA를 fal에 다시 올리기 (만료 URL 갱신)"), permissions=["reupload"]
    )
    def reupload_lora(self, request, queryset):
        done = []
        for character in queryset.exclude(lora_file=""):
            old = character.lora_url
            try:
                new = lora_files.reupload_current(character)
            except (BackendError, OSError, ValueError) as exc:
                self.message_user(request, f"{character}: {exc}", messages.ERROR)
                continue
            self.record(request, [character], f"LoRA 다시 올림: {old} → {new}")
            done.append(character)
        return self.finish(
            request, done or queryset, _("%d개 LoRA URL을 갱신했습니다.") % len(done)
        )

    @admin.action(description=_("삭제 취소"), permissions=["undelete"])
    def undelete(self, request, queryset):
        deleted = list(queryset.filter(status=CharacterStatus.DELETED))
        for character in deleted:
            management.undelete_character(character)
            self.record(request, [character], f"삭제 취소 → {character.status}")
        return self.finish(
            request, deleted or queryset, _("%d개 캐릭터의 삭제를 취소했습니다.") % len(deleted)
        )

    @admin.action(description=_("지금 영구 삭제"), permissions=["delete"])
    def purge_now(self, request, queryset):
        characters = list(queryset.select_related("owner"))
        doomed = [c for c in characters if c.status == CharacterStatus.DELETED]
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/characters/character/purge_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("캐릭터 영구 삭제"),
                    "opts": self.opts,
                    "doomed": [(c, len(management.character_files(c))) for c in doomed],
                    "skipped": [c for c in characters if c.status != CharacterStatus.DELETED],
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        self.record_deletion(request, doomed, "지금 영구 삭제 (행과 파일)")
        for character in doomed:
            management.purge_character(character)
        self.message_user(
            request, _("%d개 캐릭터를 영구 삭제했습니다.") % len(doomed), messages.WARNING
        )
        return None


class CutInline(backoffice.BackofficeInline):
    model = Cut
    extra = 0
    can_delete = False
    fields = (
        "number",
        "preview",
        "label_ko",
        "category",
        "selected",
        "similarity",
        "quality_ok",
        "quality_reasons",
        "error",
        "job_state",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("call__job")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("이미지"))
    def preview(self, obj):
        return backoffice.thumb(obj.image.name)

    @admin.display(description=_("작업"))
    def job_state(self, obj):
        job = obj.call.job if obj.call else None
        return backoffice.admin_link(job, job.get_state_display() if job else None)


class StuckFilter(admin.SimpleListFilter):
    title = _("멈춤")
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return (("yes", _("멈춘 세션")),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(support.stuck_q())
        return queryset


@admin.register(CreationSession)
class CreationSessionAdmin(backoffice.BackofficeAdmin):
    list_display = (
        "public_id",
        "photo_thumb",
        "owner_display",
        "style_id",
        "state",
        "stuck_display",
        "cut_summary",
        "mean_similarity",
        "consent_at",
        "created_at",
        "updated_at",
    )
    list_filter = ("state", StuckFilter, "style_id", "created_at")
    search_fields = ("public_id", "owner__username", "owner__email")
    search_help_text = _("세션 ID, 사용자 이름·이메일로 찾습니다.")
    list_select_related = ("owner", "photo")
    raw_id_fields = ("owner", "photo")
    readonly_fields = (
        "public_id",
        "photo_preview",
        "consent_at",
        "stuck_display",
        "cut_summary",
        "mean_similarity",
        "jobs",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "owner",
                    "style_id",
                    "custom_prompt",
                    "state",
                    "stuck_display",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (_("사진·동의"), {"fields": ("photo_preview", "consent_at", "photo")}),
        (_("컷 품질·동일인 점수"), {"fields": ("cut_summary", "mean_similarity")}),
        (_("작업"), {"fields": ("jobs",)}),
    )
    inlines = (CutInline,)

    def get_queryset(self, request):
        return support.with_open_jobs(super().get_queryset(request)).annotate(
            cut_count=Count("cuts"),
            selected_count=Count("cuts", filter=Q(cuts__selected=True)),
            quality_ok_count=Count("cuts", filter=Q(cuts__quality_ok=True)),
            quality_failed_count=Count("cuts", filter=Q(cuts__quality_ok=False)),
            similarity_mean=Avg("cuts__similarity"),
        )

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("사진"))
    def photo_thumb(self, obj):
        return backoffice.thumb(obj.photo.image.name, width=48)

    @admin.display(description=_("사진"))
    def photo_preview(self, obj):
        return backoffice.thumb(obj.photo.image.name, width=160)

    @admin.display(description=_("사용 권리 동의"), ordering="photo__consent_at")
    def consent_at(self, obj):
        return obj.photo.consent_at

    @admin.display(description=_("멈춤"))
    def stuck_display(self, obj):
        if not support.is_stuck(obj):
            return "-"
        why = _("진행 중인 작업 없음") if not obj.has_open_job else _("생성 마감 시간 지남")
        return format_html(
            '<strong class="errornote-inline" data-testid="stuck">{} ({})</strong>', _("멈춤"), why
        )

    @admin.display(description=_("컷 (선택 / 품질 통과·실패)"), ordering="cut_count")
    def cut_summary(self, obj):
        return (
            f"{obj.cut_count} ({obj.selected_count} / "
            f"{obj.quality_ok_count}·{obj.quality_failed_count})"
        )

    @admin.display(description=_("평균 동일인 거리"), ordering="similarity_mean")
    def mean_similarity(self, obj):
        return "-" if obj.similarity_mean is None else f"{obj.similarity_mean:.2f}"

    @admin.display(description=_("생성 작업"))
    def jobs(self, obj):
        return _job_table(Job.objects.filter(subject__session=obj.pk).order_by("-created_at"))


@admin.register(Photo)
class PhotoAdmin(backoffice.BackofficeAdmin):
    list_display = (
        "public_id",
        "preview",
        "owner_display",
        "resolution",
        "face_detected",
        "warnings",
        "consent_at",
        "session_count",
        "character_count",
        "created_at",
    )
    list_filter = ("face_detected", "source_format", "created_at")
    search_fields = ("public_id", "owner__username", "owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = (
        "public_id",
        "large_preview",
        "consent_at",
        "warnings",
        "remote_url",
        "created_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                session_count=Count("sessions", distinct=True),
                character_count=Count("characters", distinct=True),
            )
        )

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("사진"))
    def preview(self, obj):
        return backoffice.thumb(obj.image.name)

    @admin.display(description=_("사진"))
    def large_preview(self, obj):
        return backoffice.thumb(obj.image.name, width=256)

    @admin.display(description=_("세션"), ordering="session_count")
    def session_count(self, obj):
        return obj.session_count

    @admin.display(description=_("캐릭터"), ordering="character_count")
    def character_count(self, obj):
        return obj.character_count
