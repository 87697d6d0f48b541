import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user token for scripts (Authorization: Bearer <token>).

    Only a hash is stored; the full token is shown once, when it is created.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("이름"), max_length=60)
    prefix = models.CharField(_("앞자리"), max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("생성"), default=timezone.now)
    last_used_at = models.DateTimeField(_("마지막 사용"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("폐기"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API 토큰")
        verbose_name_plural = _("API 토큰")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
