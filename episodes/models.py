"""Webtoon episodes: ordered panels (a scene image + text laid over it) in one style.

Positions and sizes of text elements are fractions of their panel (0..1), so they survive a
change of panel height or output width; font sizes are pixels at the strip width (800 px).
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StylePreset(models.Model):
    """A look for a whole episode: its keywords join every panel's prompt (SPEC §11.7)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(_("이름"), max_length=40, unique=True)
    keywords = models.TextField(
        _("프롬프트 키워드"), help_text=_("모든 컷의 프롬프트 끝에 붙는 영어 키워드")
    )
    description = models.CharField(_("설명"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("순서"), default=0)
    is_active = models.BooleanField(_("사용"), default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("스타일 프리셋")
        verbose_name_plural = _("스타일 프리셋")

    def __str__(self) -> str:
        return self.name


class Episode(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="episodes"
    )
    title = models.CharField(_("제목"), max_length=100)
    preset = models.ForeignKey(
        StylePreset,
        verbose_name=_("스타일 프리셋"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="episodes",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name = _("에피소드")
        verbose_name_plural = _("에피소드")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("episodes:editor", kwargs={"episode_id": self.public_id})


class Panel(models.Model):
    """One cut: a generated scene or an uploaded picture, shown `height` px tall at 800 px."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="panels")
    position = models.PositiveIntegerField(_("순서"), db_index=True)
    scene = models.ForeignKey(
        "scenes.Scene", on_delete=models.SET_NULL, null=True, blank=True, related_name="panels"
    )
    image = models.FileField(_("올린 이미지"), max_length=300, blank=True)
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)
    # None: the picture's own aspect ratio at the strip width.
    height = models.PositiveIntegerField(_("컷 높이(px)"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["episode", "position", "id"]
        verbose_name = _("컷")
        verbose_name_plural = _("컷")

    def __str__(self) -> str:
        return f"panel {self.position} of {self.episode_id}"

    @property
    def image_name(self) -> str:
        """The stored picture this panel shows ('' while generating, failed or gone)."""
        if self.image:
            return self.image.name
        if self.scene_id and self.scene and self.scene.image:
            return self.scene.image.name
        return ""


class Bubble(models.Model):
    """A text element over a panel: speech/thought bubble, narration box or caption."""

    class Kind(models.TextChoices):
        # Korean webtoon lettering: each kind has its face and shape (episodes.rendering.KINDS).
        SPEECH = "speech", _("말풍선")
        SHOUT = "shout", _("외침")
        THOUGHT = "thought", _("생각 풍선")
        WHISPER = "whisper", _("속삭임")
        NARRATION = "narration", _("내레이션")
        CAPTION = "caption", _("캡션")

    TAIL_KINDS = (Kind.SPEECH, Kind.SHOUT, Kind.THOUGHT, Kind.WHISPER)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    panel = models.ForeignKey(Panel, on_delete=models.CASCADE, related_name="bubbles")
    kind = models.CharField(_("종류"), max_length=12, choices=Kind.choices)
    text = models.TextField(_("글"), blank=True)
    x = models.FloatField(default=0.1)
    y = models.FloatField(default=0.05)
    w = models.FloatField(default=0.45)
    h = models.FloatField(default=0.2)
    # Where a speech/thought bubble's tail points (a character's mouth); None: no tail.
    tail_x = models.FloatField(null=True, blank=True)
    tail_y = models.FloatField(null=True, blank=True)
    font_size = models.PositiveSmallIntegerField(_("글자 크기(px)"), default=26)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["panel", "position", "id"]
        verbose_name = _("말풍선")
        verbose_name_plural = _("말풍선")

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:30]}"

    @property
    def has_tail(self) -> bool:
        return (
            self.kind in self.TAIL_KINDS
            and self.tail_x is not None
            and self.tail_y is not None
        )


class Export(models.Model):
    """One rendering of an episode as a vertical strip (images, ZIP, PDF), made by the worker."""

    class Format(models.TextChoices):
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    class State(models.TextChoices):
        QUEUED = "queued", _("대기 중")
        RUNNING = "running", _("만드는 중")
        SUCCEEDED = "succeeded", _("완료")
        FAILED = "failed", _("실패")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="exports")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="episode_exports"
    )
    class Preset(models.TextChoices):
        # Platforms' upload limits: episodes.platforms.PLATFORMS.
        ORIGINAL = "original", _("원본 그대로")
        WEBTOON_CANVAS = "webtoon_canvas", _("WEBTOON Canvas")
        NAVER = "naver", _("네이버 웹툰 (도전·공모)")
        TAPAS = "tapas", _("Tapas")

    format = models.CharField(_("형식"), max_length=8, choices=Format.choices)
    preset = models.CharField(
        _("플랫폼"), max_length=20, choices=Preset.choices, default=Preset.ORIGINAL
    )
    # A preview is the same work without the files: the strip scaled down, where it would be
    # cut and how large each file would be, shown in the editor before exporting.
    preview = models.BooleanField(_("미리보기"), default=False)
    preview_file = models.FileField(max_length=300, blank=True)
    quality = models.PositiveSmallIntegerField(_("JPEG 품질"), null=True, blank=True)
    summary = models.CharField(_("요약"), max_length=300, blank=True)
    state = models.CharField(
        _("상태"), max_length=12, choices=State.choices, default=State.QUEUED, db_index=True
    )
    width = models.PositiveIntegerField(_("가로(px)"))
    max_height = models.PositiveIntegerField(_("이미지 최대 높이(px)"))
    total_height = models.PositiveIntegerField(_("전체 높이(px)"), null=True, blank=True)
    # [{"name": storage name ("" in a preview), "width": px, "height": px, "size": bytes,
    #   "top": px in the strip}, ...] top to bottom.
    images = models.JSONField(default=list, blank=True)
    zip_file = models.FileField(max_length=300, blank=True)
    pdf_file = models.FileField(max_length=300, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(_("오류"), blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("내보내기")
        verbose_name_plural = _("내보내기")

    def __str__(self) -> str:
        return f"export {self.public_id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)
