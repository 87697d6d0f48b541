from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PromptTranslation(models.Model):
    """One Korean text and the English image prompt a language model made of it: asked for
    once per (kind, text, model), then read from here; its cost is kept for the books."""

    key = models.CharField(max_length=64, unique=True)  # sha256 of kind, model and text
    kind = models.CharField(_("종류"), max_length=24)
    source = models.TextField(_("원문"))
    english = models.TextField(_("영어 프롬프트"))
    model = models.CharField(_("모델"), max_length=80)
    cost = models.DecimalField(_("비용($)"), max_digits=8, decimal_places=4, default=0)
    hits = models.PositiveIntegerField(_("재사용 횟수"), default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("프롬프트 번역")
        verbose_name_plural = _("프롬프트 번역")

    def __str__(self) -> str:
        return f"{self.source[:30]} → {self.english[:40]}"
