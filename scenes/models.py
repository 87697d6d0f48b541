"""Webtoon scenes made with zero, one or two trained characters (SPEC §6)."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scene(models.Model):
    class Mode(models.TextChoices):
        PROMPT = "prompt", _("프롬프트 모드")
        ONE = "one", _("캐릭터 1명")
        TWO = "two", _("캐릭터 2명")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scenes"
    )
    mode = models.CharField(_("모드"), max_length=8, choices=Mode.choices)
    # What the user chose, as typed (Korean); the prompt is what was sent.
    inputs = models.JSONField(default=dict, blank=True)
    prompt = models.TextField(_("프롬프트"))
    image_size = models.CharField(max_length=24)
    steps = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField(null=True, blank=True)
    image = models.FileField(max_length=300, blank=True)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    call = models.ForeignKey(
        "jobs.RemoteCall", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # Two characters, one identity each (issue 16): compose with both LoRAs, then repaint
    # each face with only its own LoRA. `separation`: "" (single pass) | running | done |
    # skipped (fewer than two faces: the composed image stands) | failed.
    separate_identities = models.BooleanField(_("인물 분리"), default=False)
    separation = models.CharField(max_length=12, blank=True)
    # Every stage in order: {"stage": compose|inpaint_a|inpaint_b, "call": id, "image",
    # "arguments", "cost", "faces"?}; the last stage's image is the scene's image.
    stages = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("씬")
        verbose_name_plural = _("씬")

    def __str__(self) -> str:
        return f"scene {self.public_id} ({self.mode})"


class SceneCharacter(models.Model):
    """Which character, which LoRA version and which scale a scene used (to regenerate it)."""

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="cast")
    character = models.ForeignKey(
        "characters.Character", on_delete=models.SET_NULL, null=True, related_name="scene_roles"
    )
    version = models.ForeignKey(
        "characters.CharacterVersion", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    role = models.CharField(max_length=1)  # "A" or "B"
    trigger_word = models.CharField(max_length=40)
    lora_url = models.URLField(max_length=1000)
    scale = models.FloatField()
    # The face matched to this character against its photo (characters.likeness shape).
    identity = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["scene", "role"]

    def __str__(self) -> str:
        return f"{self.role}: {self.trigger_word} @ {self.scale}"
