from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import services
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix_display", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "user__email", "prefix")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("prefix_display", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "prefix_display", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    @admin.display(description=_("토큰 (앞자리만)"))
    def prefix_display(self, obj: ApiToken) -> str:
        return f"{obj.prefix}…" if obj.prefix else "-"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, raw = services.create_api_token(user=obj.user, name=obj.name)
        obj.pk = token.pk
        self.message_user(request, _("새 토큰 (지금 한 번만 표시됩니다): %(raw)s") % {"raw": raw})

    @admin.action(description=_("선택한 토큰 폐기"))
    def revoke(self, request, queryset):
        for token in queryset:
            services.revoke_api_token(token)
        self.message_user(request, _("%(n)d개 토큰을 폐기했습니다.") % {"n": queryset.count()})
