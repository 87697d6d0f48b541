from django.contrib import admin, messages
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from webtoon import backoffice
from webtoon.exceptions import DomainError

from . import services
from .models import Bubble, Episode, Export, Panel, StylePreset


@admin.register(StylePreset)
class StylePresetAdmin(admin.ModelAdmin):
    """Presets are data: support edits names and keywords here, no deploy needed."""

    list_display = ("name", "slug", "keywords", "position", "is_active", "episode_count")
    list_editable = ("keywords", "position", "is_active")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug", "keywords")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(episode_count=Count("episodes"))

    @admin.display(description=_("에피소드 수"), ordering="episode_count")
    def episode_count(self, obj):
        return obj.episode_count


class PanelInline(backoffice.BackofficeInline):
    model = Panel
    extra = 0
    fields = ("position", "preview", "scene", "height")
    readonly_fields = ("preview",)
    raw_id_fields = ("scene",)
    ordering = ("position",)

    @admin.display(description=_("이미지"))
    def preview(self, obj):
        return backoffice.thumb(obj.image_name)


@admin.register(Episode)
class EpisodeAdmin(backoffice.BackofficeAdmin):
    list_display = ("title", "owner_display", "preset", "panel_count", "updated_at")
    list_filter = ("preset", "updated_at")
    search_fields = ("public_id", "title", "owner__username", "owner__email")
    list_select_related = ("owner", "preset")
    raw_id_fields = ("owner",)
    readonly_fields = ("public_id", "created_at", "updated_at")
    inlines = (PanelInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(panel_count=Count("panels"))

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("컷 수"), ordering="panel_count")
    def panel_count(self, obj):
        return obj.panel_count


class BubbleInline(backoffice.BackofficeInline):
    model = Bubble
    extra = 0
    fields = ("kind", "text", "x", "y", "w", "h", "tail_x", "tail_y", "font_size")


@admin.register(Panel)
class PanelAdmin(backoffice.BackofficeAdmin):
    list_display = ("public_id", "preview", "episode", "position", "height")
    list_select_related = ("episode", "scene")
    search_fields = ("public_id", "episode__title", "episode__owner__username")
    raw_id_fields = ("episode", "scene")
    readonly_fields = ("public_id", "large_preview")
    inlines = (BubbleInline,)

    @admin.display(description=_("이미지"))
    def preview(self, obj):
        return backoffice.thumb(obj.image_name)

    @admin.display(description=_("이미지"))
    def large_preview(self, obj):
        return backoffice.thumb(obj.image_name, width=256)


@admin.register(Export)
class ExportAdmin(backoffice.BackofficeAdmin):
    list_display = ("public_id", "episode", "owner_display", "preset", "preview", "format",
                    "quality", "state", "image_count", "total_height", "created_at",
                    "finished_at")
    list_filter = ("state", "preset", "preview", "format", "created_at")
    search_fields = ("public_id", "episode__title", "owner__username", "error")
    list_select_related = ("episode", "owner")
    raw_id_fields = ("episode", "owner")
    readonly_fields = ("public_id", "summary", "quality", "images", "zip_file", "pdf_file",
                       "preview_file", "warnings", "error", "total_height", "created_at",
                       "started_at", "finished_at")
    actions = ("run_again",)
    detail_actions = ("run_again",)

    @admin.display(description=_("사용자"), ordering="owner__username")
    def owner_display(self, obj):
        return backoffice.owner_cell(obj.owner)

    @admin.display(description=_("이미지 수"))
    def image_count(self, obj):
        return len(obj.images)

    @admin.action(description=_("같은 설정으로 다시 내보내기"))
    def run_again(self, request, queryset):
        made, refused = [], []
        for export in queryset.select_related("episode", "owner"):
            try:
                made.append(services.request_export(
                    owner=export.owner, episode_id=export.episode.public_id, fmt=export.format,
                    preset=export.preset, preview=export.preview,
                ))
            except DomainError as exc:
                refused.append(f"{export.episode}: {exc}")
        self.record(request, queryset, f"re-exported as {[str(m.public_id) for m in made]}")
        for line in refused:
            self.message_user(request, line, messages.ERROR)
        message = _("%(n)d개를 다시 내보내도록 요청했습니다.") % {"n": len(made)}
        return self.finish(request, queryset, message)
