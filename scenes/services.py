"""Scene generation (SPEC §6): one character, two characters, or prompt mode.

A scene is a job like the others; its row keeps the prompt, seed, LoRA version(s) and
scale(s), so it can be made again with a new seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from characters.enums import CharacterStatus
from characters.management import check_scale
from characters.models import Character
from webtoon.exceptions import InvalidInput, NotFound
from webtoon.imaging.safety import SAFETY_FILTER_MESSAGE, flagged_unsafe
from webtoon.jobs import limits
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, RemoteCall
from webtoon.prompting.translate import scene_english as english  # dictionary, else the LLM

from . import reference, separation
from .identity import measure_cast
from .models import Scene, SceneCharacter
from .vocabulary import EXPRESSIONS, PLACES, SITUATIONS

SCENE = register(
    JobKind(
        name="scene",
        label="씬 생성",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_LORA_INFERENCE",
        expected_seconds=20,
        on_call_finished="scenes.services.scene_finished",
        on_call_error="characters.lora_files.recover_expired_lora",
        # A separated scene whose job ended between stages still gets a picture (issue 16).
        on_job_finished="scenes.separation.job_finished",
    )
)

ONE_SIZE = "portrait_4_3"  # steps: settings.INFERENCE_STEPS (28)
TWO_SIZE, TWO_STEPS = "landscape_16_9", 30
TWO_SCALES = (0.8, 0.7)
MAX_SCALE_SUM = 1.5
IMAGE_SIZES = (
    "portrait_4_3",
    "portrait_16_9",
    "square_hd",
    "square",
    "landscape_4_3",
    "landscape_16_9",
)

SCALE_SUM_WARNING = (
    "두 캐릭터 반영 강도의 합이 1.5를 넘습니다. 캐릭터 특징이 섞이거나 약해질 수 있습니다 "
    "(각 0.6~0.8, 합 1.5 이하 권장)."
)
THREE_OR_MORE = "3명 이상은 지원하지 않습니다. 캐릭터는 최대 2명까지 고를 수 있습니다."
NOTHING_DESCRIBED = "표정, 장소, 상황 중 하나 이상을 입력해주세요."
SAME_TWICE = "같은 캐릭터를 두 번 고를 수 없습니다. 서로 다른 캐릭터를 골라주세요."
TWO_CHARACTER_LIMITS = (
    "두 캐릭터를 함께 그리면 각 캐릭터의 특징이 약해질 수 있습니다.",
    "강도는 각각 0.6~0.8, 합계 1.5 이하를 권장합니다.",
    "닮은 캐릭터끼리는 서로 섞일 수 있으니 옷이나 머리 색으로 구분해주세요.",
    "3명 이상은 지원하지 않습니다.",
)


@dataclass(frozen=True)
class Cast:
    character: Character
    scale: float
    version: object = None  # a CharacterVersion; None: the character's current one

    @property
    def lora_version(self):
        return self.version or self.character.current_version

    @property
    def lora_url(self) -> str:
        return self.version.lora_url if self.version else self.character.lora_url


def scene_character(owner, character_id) -> Character:
    """One of the owner's characters, in any state but deleted (issue 17: usable by
    reference as soon as it exists); another user's or a deleted one is 404."""
    character = get_object_or_404(Character, public_id=character_id, owner=owner)
    if character.status == CharacterStatus.DELETED:
        raise NotFound(_("삭제된 캐릭터는 쓸 수 없습니다."))
    return character


def usable_character(owner, character_id) -> Character:
    """A trained, active character of the owner's (the LoRA path); else a clear 422/404."""
    character = scene_character(owner, character_id)
    if not reference.has_lora(character):
        raise InvalidInput(_(reference.NOT_TRAINED) % {"name": character.name})
    return character


def characters_for_scenes(owner):
    """Trained characters, and those usable by reference (issue 17): anything not deleted
    with curated cuts, training data or a photo to refer to."""
    usable = (
        Q(status=CharacterStatus.ACTIVE)
        | Q(session__isnull=False)
        | Q(photo__isnull=False)
        | ~Q(training_data="")
    )
    return (
        Character.objects.filter(owner=owner)
        .exclude(status=CharacterStatus.DELETED)
        .filter(usable)
        .order_by("name")
    )


def _check_size(image_size: str) -> str:
    if image_size not in IMAGE_SIZES:
        raise InvalidInput(_("지원하지 않는 이미지 크기입니다."))
    return image_size


def _parts(*texts: str) -> str:
    return ", ".join(t for t in texts if t)


# --- one character (or none: prompt mode) ------------------------------------------------------
def generate_with_character(
    *,
    owner,
    character_id=None,
    scale: float | None = None,
    expression: str = "",
    location: str = "",
    situation: str = "",
    image_size: str = ONE_SIZE,
    style: str = "",
    method: str | None = None,
) -> Scene:
    """`style`: a style preset's keywords, added after the scene words (episodes).
    `method`: "lora" | "reference" (scenes.reference); None: the character's default."""
    _check_size(image_size)
    described = any((text or "").strip() for text in (expression, location, situation))
    if not described and (character_id is None or not style):
        # Issue 15: a scene with nothing described is refused before anything is paid.
        raise InvalidInput(_(NOTHING_DESCRIBED))
    inputs = {"expression": expression, "location": location, "situation": situation}
    if style:
        inputs["style"] = style
    words = (
        english(expression, EXPRESSIONS),
        english(location, PLACES),
        english(situation, SITUATIONS),
    )
    if character_id is None:
        prompt = _parts(*words)
        if not prompt:
            raise InvalidInput(_(NOTHING_DESCRIBED))
        return _create(owner, Scene.Mode.PROMPT, _parts(prompt, style), [], image_size,
                       settings.INFERENCE_STEPS, inputs)
    character = scene_character(owner, character_id)
    if reference.resolve([character], method) == reference.REFERENCE:
        return reference.one_character(
            owner=owner, character=character, words=list(words), style=style,
            image_size=image_size, steps=settings.INFERENCE_STEPS, inputs=inputs,
        )
    character = usable_character(owner, character_id)
    cast = Cast(character, check_scale(character.lora_scale_default if scale is None else scale))
    prompt = _parts(character.trigger_word, *words, style)
    return _create(owner, Scene.Mode.ONE, prompt, [cast], image_size, settings.INFERENCE_STEPS,
                   inputs)


# --- two characters ---------------------------------------------------------------------------
def generate_two_characters(
    *,
    owner,
    character_a_id,
    character_b_id,
    scale_a: float = TWO_SCALES[0],
    scale_b: float = TWO_SCALES[1],
    location: str = "",
    situation: str = "",
    a_action: str = "",
    b_action: str = "",
    extra_character_ids: list | None = None,
    style: str = "",
    separate_identities: bool = True,
    method: str | None = None,
) -> Scene:
    """`style`: a style preset's keywords, added at the end of the prompt (episodes).
    `separate_identities`: after the two-LoRA pass, repaint each face with only its own
    LoRA (scenes.separation); False keeps the single pass."""
    if extra_character_ids:
        raise InvalidInput(_(THREE_OR_MORE))
    if character_a_id == character_b_id:
        raise InvalidInput(_(SAME_TWICE))
    pair = [scene_character(owner, character_a_id), scene_character(owner, character_b_id)]
    if reference.resolve(pair, method) == reference.REFERENCE:
        return reference.two_characters(
            owner=owner, characters=pair, location=location, situation=situation,
            a_action=a_action, b_action=b_action, style=style, image_size=TWO_SIZE,
            steps=TWO_STEPS,
        )
    a = Cast(usable_character(owner, character_a_id), check_scale(scale_a))
    b = Cast(usable_character(owner, character_b_id), check_scale(scale_b))
    ta, tb = a.character.trigger_word, b.character.trigger_word
    place = english(location, PLACES) or "a room"
    prompt = (
        f"{ta} and {tb}, two people in {place}, "
        f"{ta} is {english(a_action, EXPRESSIONS) or 'standing'}, "
        f"{tb} is {english(b_action, EXPRESSIONS) or 'standing'}"
    )
    if situation:
        prompt += f", {english(situation, SITUATIONS)}"
    prompt = _parts(prompt, style)
    inputs = {"location": location, "situation": situation, "a_action": a_action,
              "b_action": b_action}
    if style:
        inputs["style"] = style
    warnings = [_(SCALE_SUM_WARNING)] if a.scale + b.scale > MAX_SCALE_SUM else []
    return _create(owner, Scene.Mode.TWO, prompt, [a, b], TWO_SIZE, TWO_STEPS, inputs, warnings,
                   separate=separate_identities)


# --- the job ------------------------------------------------------------------------------------
def scene_arguments(scene: Scene, cast: list[SceneCharacter]) -> dict:
    args = {
        "prompt": scene.prompt,
        "image_size": scene.image_size,
        "num_inference_steps": scene.steps,
        "seed": scene.seed,
        "num_images": 1,
        "enable_safety_checker": True,
    }
    if cast:
        args["loras"] = [{"path": c.lora_url, "scale": c.scale} for c in cast]
    return args


def _create(
    owner, mode, prompt, cast, image_size, steps, inputs, warnings=(), *, separate=False
) -> Scene:
    separate = bool(separate) and mode == Scene.Mode.TWO
    with transaction.atomic():
        if separate:
            # The whole estimate (compose + two inpaints) against the owner's limits, before
            # anything is created; create_job checks the compose call again in its turn.
            limits.check_costly(owner, separation.total(image_size))
        scene = Scene.objects.create(
            owner=owner,
            mode=mode,
            separate_identities=separate,
            prompt=prompt,
            image_size=image_size,
            steps=steps,
            seed=random.randint(0, 2**31 - 1),
            inputs=inputs,
            warnings=list(warnings),
        )
        roles = [
            SceneCharacter(
                scene=scene,
                character=c.character,
                version=c.lora_version,
                role="AB"[i],
                trigger_word=c.character.trigger_word,
                lora_url=c.lora_url,
                scale=c.scale,
            )
            for i, c in enumerate(cast)
        ]
        SceneCharacter.objects.bulk_create(roles)
        _start(scene, roles)
    return scene


def _start(scene: Scene, roles: list[SceneCharacter]) -> None:
    job = jobs.create_job(
        owner=scene.owner,
        kind=SCENE.name,
        calls=[jobs.CallSpec(settings.FAL_ENDPOINTS["lora"], scene_arguments(scene, roles))],
        subject={"scene": scene.pk},
        limited=True,  # every scene is the owner's request (scene page, API, episode panels)
    )
    if scene.separate_identities:
        # The job is created with its first stage; the inpaints are added as it goes, and
        # the day's spend counts all three from the start (a skipped inpaint is not paid).
        job.cost_estimated = separation.total(scene.image_size)
        job.save(update_fields=["cost_estimated"])
    scene.job, scene.call = job, job.calls.get()
    scene.save(update_fields=["job", "call"])


def scene_finished(call: RemoteCall) -> None:
    scene = Scene.objects.filter(job_id=call.job_id).first()
    if scene is None:
        return
    if scene.separate_identities and not (
        call.state == CallState.SUCCEEDED and call.slot == 0 and flagged_unsafe(call.result)
    ):
        if call.slot == 0:
            _note_rehosted_loras(scene, call)
        separation.stage_finished(scene, call)
        return
    if call.state == CallState.SUCCEEDED and flagged_unsafe(call.result):
        scene.error = str(SAFETY_FILTER_MESSAGE)  # a blacked-out picture; [다시 생성] stays
    elif call.state == CallState.SUCCEEDED and call.output_file:
        scene.image = call.output_file.name
        scene.seed = (call.result or {}).get("seed", scene.seed)
        scene.error = ""
        _note_rehosted_loras(scene, call)
    else:
        scene.error = call.error_message or _("생성에 실패했습니다.")
    scene.save(update_fields=["image", "seed", "error"])
    if scene.image:
        measure_cast(scene)


def _note_rehosted_loras(scene: Scene, call: RemoteCall) -> None:
    """An expired LoRA was re-hosted on the way: the scene records the URL it really used."""
    if call.state != CallState.SUCCEEDED:
        return
    used = {lora["path"] for lora in call.arguments.get("loras") or []}
    for role in scene.cast.all():
        if role.lora_url not in used and role.character and role.character.lora_url in used:
            role.lora_url = role.character.lora_url
            role.save(update_fields=["lora_url"])


# --- the gallery ----------------------------------------------------------------------------------
def scene_for(owner, scene_id) -> Scene:
    return get_object_or_404(Scene, public_id=scene_id, owner=owner)


def scenes_for(owner, character_id=None):
    qs = Scene.objects.filter(owner=owner).prefetch_related("cast__character")
    if character_id:
        qs = qs.filter(cast__character__public_id=character_id).distinct()
    return qs.order_by("-created_at")


def regenerate(*, owner, scene_id) -> Scene:
    """The same scene with a new seed (same LoRA versions, scales, prompt), as a new scene."""
    old = scene_for(owner, scene_id)
    if reference.scene_method(old) == reference.REFERENCE:
        return reference.regenerate(owner, old)
    cast = [
        Cast(usable_character(owner, role.character.public_id), role.scale, role.version)
        for role in old.cast.select_related("character", "version")
        if role.character
    ]
    if len(cast) != old.cast.count():
        raise InvalidInput(_("이 씬의 캐릭터가 삭제되어 다시 만들 수 없습니다."))
    warnings = [w for w in old.warnings if w not in separation.OUTCOME_MESSAGES]
    return _create(
        owner, old.mode, old.prompt, cast, old.image_size, old.steps,
        {k: v for k, v in old.inputs.items() if k != "twin"},  # a new scene: not compared yet
        warnings, separate=old.separate_identities,
    )


def delete_scene(*, owner, scene_id) -> None:
    scene = scene_for(owner, scene_id)
    names = {scene.image.name, *(stage.get("image") for stage in scene.stages)}
    from episodes.services import keep_scene_pictures  # episodes builds on scenes

    keep_scene_pictures(scene)  # panels showing it get their own copy first
    scene.delete()
    for name in names - {"", None}:
        default_storage.delete(name)
