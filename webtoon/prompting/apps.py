from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PromptingConfig(AppConfig):
    """Korean in, Korean out: free Korean text → an English image prompt (issue 15)."""

    name = "webtoon.prompting"
    label = "prompting"
    verbose_name = _("프롬프트 번역")
