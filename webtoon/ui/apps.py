from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UiConfig(AppConfig):
    """Shared page vocabulary: prices in $ and ₩, Korean size labels (issue 15)."""

    name = "webtoon.ui"
    label = "ui"
    verbose_name = _("화면")
