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


class RateEvent(models.Model):
    """One counted action for a database-backed rate limit (webtoon/accounts/throttle.py):
    a sign-up from an address, a restore, an upload, an export, a preview by a user. In the
    database, not a cache: the default cache is per process and gunicorn runs several."""

    key = models.CharField(max_length=120)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["key", "at"], name="rateevent_key_at")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.at:%Y-%m-%d %H:%M:%S}"


class PendingEmailVerification(models.Model):
    """A sign-up whose e-mail address is not confirmed yet (SIGNUP_REQUIRE_EMAIL_VERIFICATION):
    while this row exists the user may look around but not start anything that costs money.
    No row: verified, or an account made by staff or before the setting."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_verification"
    )
    email = models.EmailField(_("이메일"))
    created_at = models.DateTimeField(_("생성"), default=timezone.now)
    sent_at = models.DateTimeField(_("보낸 시각"), null=True, blank=True)

    class Meta:
        verbose_name = _("이메일 인증 대기")
        verbose_name_plural = _("이메일 인증 대기")

    def __str__(self) -> str:
        return self.email
