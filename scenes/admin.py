from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from webtoon import backoffice

from .models import Scene, SceneCharacter
from .reference import scene_method


class SceneCharacterInline(backoffice.BackofficeInline):
    model = SceneCharacter
    extra = 0
    raw_id_fields = ("character", "version")
    readonly_fields = ("identity",)


@admin.register(Scene)
class SceneAdmin(backoffice.BackofficeAdmin):
    list_display = ("public_id", "preview", "owner_display", "mode", "method", "cast_count",
                    "job_state", "image_size", "seed", "created_at")
    list_filter = ("mode", "separation", "created_at")
    search_fields = ("public_id", "owner__username", "owner__email", "prompt")
    list_select_related = ("owner", "job")
    show_full_result_count = False
    raw_id_fields = ("owner", "job", "call")
    readonly_fields = ("public_id", "large_preview", "separate_identities", "separation",
                       "stage_previews", "created_at")
    inlines = (SceneCharacterInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(cast_count=Count("cast"))

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("이미지"))
    def preview(self, obj):
        return backoffice.thumb(obj.image.name)

    @admin.display(description=_("이미지"))
    def large_preview(self, obj):
        return backoffice.thumb(obj.image.name, width=256)

    @admin.display(description=_("단계별 이미지"))
    def stage_previews(self, obj):
        """Each stage of a separated scene (issue 16): its picture, call and cost."""
        return format_html_join(
            " ", "<figure>{}<figcaption>{} · call {} · ${}</figcaption></figure>",
            ((backoffice.thumb(s.get("image") or ""), s.get("stage"), s.get("call"),
              s.get("cost")) for s in obj.stages),
        ) or "-"

    @admin.display(description=_("방식"))
    def method(self, obj):
        """lora | reference (issue 17) | - (prompt mode); the references are in `inputs`."""
        return scene_method(obj) or "-"

    @admin.display(description=_("캐릭터 수"), ordering="cast_count")
    def cast_count(self, obj):
        return obj.cast_count

    @admin.display(description=_("작업"))
    def job_state(self, obj):
        job = obj.job
        return backoffice.admin_link(job, job.get_state_display() if job else None)
