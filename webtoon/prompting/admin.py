from django.contrib import admin

from .models import PromptTranslation


@admin.register(PromptTranslation)
class PromptTranslationAdmin(admin.ModelAdmin):
    list_display = ("source", "english", "kind", "model", "cost", "hits", "created_at")
    list_filter = ("kind", "model")
    search_fields = ("source", "english")
    readonly_fields = ("key", "kind", "source", "english", "model", "cost", "hits", "created_at")
