"""Photos, creation sessions (the new-character wizard) and their cuts."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .enums import CharacterStatus, CutCategory, SessionState, StyleId


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
    # dlib face descriptor of the photo, computed once in the worker: None = not computed
    # yet, [] = no face found (identity similarity cannot be measured).
    face_embedding = models.JSONField(null=True, blank=True, editable=False)
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
    # Identity distance to the uploaded photo (dlib; same person ~0.2-0.4, others ~0.7).
    similarity = models.FloatField(_("동일인 거리"), null=True, blank=True)
    # None until the quality check has run on the current image.
    quality_ok = models.BooleanField(_("품질 통과"), null=True, blank=True)
    quality_reasons = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    # {"distance", "verdict", "near_copy"} against the photo (characters.likeness); None:
    # not measured yet, or the photo has no face.
    identity = models.JSONField(null=True, blank=True)
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

    @property
    def has_image(self) -> bool:
        return bool(self.image)


class Character(models.Model):
    """A trained (or training) character: SPEC §5.2."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="characters"
    )
    session = models.ForeignKey(
        CreationSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    photo = models.ForeignKey(
        Photo, on_delete=models.SET_NULL, null=True, blank=True, related_name="characters"
    )
    name = models.CharField(_("이름"), max_length=60)
    # Unique across the whole system (SPEC §11.2): the word a LoRA is keyed on.
    trigger_word = models.CharField(_("트리거 워드"), max_length=40, unique=True)
    style_id = models.CharField(_("스타일"), max_length=24, choices=StyleId.choices)
    custom_prompt = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        _("상태"),
        max_length=16,
        choices=CharacterStatus.choices,
        default=CharacterStatus.DRAFT,
        db_index=True,
    )
    lora_scale_default = models.FloatField(_("기본 LoRA 강도"), default=0.8)
    # True once the user set the default scale: the scale sweep no longer changes it.
    lora_scale_user_set = models.BooleanField(default=False)
    # The selected cuts as one labelled PNG grid (characters.reference_sheet).
    reference_sheet = models.FileField(max_length=300, blank=True)
    # Reference mode (issue 17): the few images a scene is drawn from without the LoRA,
    # chosen once (characters.references): [{"image", "source", "number", "label",
    # "angle", "distance"}], best first.
    reference_images = models.JSONField(default=list, blank=True)
    training_images_count = models.PositiveIntegerField(_("학습 이미지 수"), default=0)
    candidate_images_count = models.PositiveIntegerField(default=0)
    training_steps = models.PositiveIntegerField(default=1500)
    learning_rate = models.FloatField(default=1e-4)
    resolution = models.PositiveIntegerField(default=1024)
    # The packaged training data: kept in our storage, re-hosted for the backend (cache).
    training_data = models.FileField(max_length=300, blank=True)
    training_data_size = models.PositiveBigIntegerField(default=0)
    training_data_sha256 = models.CharField(max_length=64, blank=True)
    training_data_url = models.URLField(max_length=1000, blank=True)
    training_data_backend = models.CharField(max_length=16, blank=True)
    # The trained LoRA: fal's URL (may expire) and our own copy.
    lora_url = models.URLField(_("LoRA URL"), max_length=1000, blank=True)
    lora_file = models.FileField(max_length=300, blank=True)
    lora_file_backed_up = models.BooleanField(_("LoRA 백업됨"), default=False)
    local_backup_path = models.CharField(max_length=500, blank=True)
    training_job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    samples_job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    current_version = models.ForeignKey(
        "CharacterVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    training_started_at = models.DateTimeField(null=True, blank=True)
    # What making it cost, for a character restored from a backup (it has no jobs of its
    # own to sum); None for a character made here (its jobs say it).
    restored_cost = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    trained_at = models.DateTimeField(_("학습 완료"), null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("캐릭터")
        verbose_name_plural = _("캐릭터")

    def __str__(self) -> str:
        return f"{self.name} ({self.trigger_word})"

    def get_absolute_url(self) -> str:
        return reverse("characters:detail", kwargs={"character_id": self.public_id})

    @property
    def style_label(self) -> str:
        return StyleId(self.style_id).label if self.style_id in StyleId.values else self.style_id

    @property
    def training_seconds(self) -> int | None:
        if self.trained_at and self.training_started_at:
            return int((self.trained_at - self.training_started_at).total_seconds())
        return None


class Sample(models.Model):
    """One of the test images made right after training (SPEC Step 7)."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="samples")
    version = models.ForeignKey(
        "CharacterVersion", on_delete=models.CASCADE, null=True, blank=True, related_name="samples"
    )
    number = models.PositiveSmallIntegerField()
    prompt = models.CharField(max_length=500)
    image = models.FileField(max_length=300, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    similarity = models.FloatField(_("동일인 거리"), null=True, blank=True)
    identity = models.JSONField(null=True, blank=True)
    call = models.ForeignKey(
        "jobs.RemoteCall", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["character", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["character", "version", "number"], name="unique_sample_number"
            )
        ]

    def __str__(self) -> str:
        return f"sample {self.number} of {self.character_id}"


class CharacterVersion(models.Model):
    """One trained LoRA of a character (v1, v2, ...): its file, data, parameters, date.

    The character's own lora/training fields always mirror its current version."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveSmallIntegerField(_("버전"))
    lora_url = models.URLField(max_length=1000, blank=True)
    lora_file = models.FileField(max_length=300, blank=True)
    lora_file_backed_up = models.BooleanField(default=False)
    training_data = models.FileField(max_length=300, blank=True)
    training_images_count = models.PositiveIntegerField(default=0)
    training_steps = models.PositiveIntegerField(default=1500)
    learning_rate = models.FloatField(default=1e-4)
    resolution = models.PositiveIntegerField(default=1024)
    training_job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The scale sweep after training (characters.sweep): its job, the scale it recommends
    # and why, in the user's words.
    sweep_job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recommended_scale = models.FloatField(_("추천 LoRA 강도"), null=True, blank=True)
    scale_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["character", "number"]
        constraints = [
            models.UniqueConstraint(fields=["character", "number"], name="unique_version_number")
        ]
        verbose_name = _("캐릭터 버전")
        verbose_name_plural = _("캐릭터 버전")

    def __str__(self) -> str:
        return f"v{self.number} of {self.character_id}"


class CharacterImage(models.Model):
    """A test-generated image in the character's gallery (prompt, scale, seed kept)."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="gallery")
    version = models.ForeignKey(
        CharacterVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    prompt = models.CharField(max_length=1000)
    scale = models.FloatField()
    image_size = models.CharField(max_length=24, default="square_hd")
    seed = models.BigIntegerField(null=True, blank=True)
    image = models.FileField(max_length=300, blank=True)
    identity = models.JSONField(null=True, blank=True)
    call = models.ForeignKey(
        "jobs.RemoteCall", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"test image of {self.character_id} at {self.scale}"


class SweepImage(models.Model):
    """One image of the scale sweep after a training: a prompt at a scale (issue 16)."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="sweep")
    version = models.ForeignKey(
        CharacterVersion, on_delete=models.CASCADE, related_name="sweep_images"
    )
    scale = models.FloatField()
    prompt_number = models.PositiveSmallIntegerField()
    prompt = models.CharField(max_length=500)
    seed = models.BigIntegerField(null=True, blank=True)
    image = models.FileField(max_length=300, blank=True)
    identity = models.JSONField(null=True, blank=True)
    call = models.ForeignKey(
        "jobs.RemoteCall", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "prompt_number", "scale"]

    def __str__(self) -> str:
        return f"sweep {self.prompt_number} at {self.scale} of {self.version_id}"
