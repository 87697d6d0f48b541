"""Photos, creation sessions (the new-character wizard) and their cuts."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .enums import CutCategory, SessionState, StyleId


class Photo(models.Model):
    """The one uploaded photo, decoded and re-encoded (metadata stripped) by us."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos"
    )
    image = models.FileField(_("사진"), max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    source_format = models.CharField(max_length=8)
    face_detected = models.BooleanField(default=False)
    face_box = models.JSONField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    consent_at = models.DateTimeField(_("사용 권리 동의 시각"))
    # The photo re-hosted where the backend can fetch it (cache; may expire).
    remote_url = models.URLField(max_length=1000, blank=True)
    remote_backend = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("사진")
        verbose_name_plural = _("사진")

    def __str__(self) -> str:
        return f"photo {self.public_id} ({self.width}x{self.height})"

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


class CreationSession(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="creation_sessions"
    )
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="sessions")
    style_id = models.CharField(
        _("스타일"), max_length=24, choices=StyleId.choices, default=StyleId.ORIGINAL
    )
    custom_prompt = models.CharField(_("커스텀 스타일"), max_length=200, blank=True)
    state = models.CharField(
        _("상태"), max_length=16, choices=SessionState.choices, default=SessionState.STYLE
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("캐릭터 생성 세션")
        verbose_name_plural = _("캐릭터 생성 세션")

    def __str__(self) -> str:
        return f"session {self.public_id} ({self.style_id}, {self.state})"


class Cut(models.Model):
    """One generated training image candidate (a slot in the curation grid)."""

    session = models.ForeignKey(CreationSession, on_delete=models.CASCADE, related_name="cuts")
    number = models.PositiveIntegerField(_("번호"))
    template_id = models.PositiveIntegerField()
    category = models.CharField(_("분류"), max_length=16, choices=CutCategory.choices)
    pose_prompt = models.CharField(max_length=300)
    label_ko = models.CharField(_("라벨"), max_length=60)
    call = models.ForeignKey(
        "jobs.RemoteCall", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    image = models.FileField(max_length=300, blank=True)
    selected = models.BooleanField(_("선택"), default=True)
    similarity = models.FloatField(_("동일인 거리"), null=True, blank=True)
    quality_ok = models.BooleanField(null=True, blank=True)
    quality_reasons = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "number"]
        constraints = [
            models.UniqueConstraint(fields=["session", "number"], name="unique_cut_number")
        ]
        verbose_name = _("컷")
        verbose_name_plural = _("컷")

    def __str__(self) -> str:
        return f"cut {self.number} ({self.label_ko})"
