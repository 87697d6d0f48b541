from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "webtoon.jobs"
    label = "jobs"
    verbose_name = _("작업")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import kinds  # noqa: F401  (registers the built-in job kinds)
