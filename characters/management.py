"""My Characters (SPEC §5): edit, soft delete and purge, test-generate into a gallery.

The API, the pages, the admin and the daily purge task call these functions.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict, InvalidInput
from webtoon.imaging.safety import SAFETY_FILTER_MESSAGE, flagged_unsafe
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, Job, RemoteCall
from webtoon.media import media_url
from webtoon.prompting.translate import english as prompt_english

from . import backup, checks, likeness
from .enums import CharacterStatus
from .models import Character, CharacterImage
from .queries import character_for
from .sweep import sweep_of
from .training import current_samples

logger = logging.getLogger(__name__)

IMAGE_SIZES = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)

TEST_IMAGE = register(
    JobKind(
        name="test_image",
        label="테스트 생성",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_LORA_INFERENCE",
        expected_seconds=20,
        on_call_finished="characters.management.test_image_finished",
        on_call_error="characters.lora_files.recover_expired_lora",
    )
)


# --- edit ---------------------------------------------------------------------------------------
def check_scale(scale: float) -> float:
    low, high = settings.LORA_SCALE_MIN, settings.LORA_SCALE_MAX
    if not low <= scale <= high:
        raise InvalidInput(
            _("캐릭터 반영 강도는 %(low)s~%(high)s 사이여야 합니다.") % {"low": low, "high": high}
        )
    return round(scale, 2)


def update_character(
    *, owner, character_id, name: str | None = None, lora_scale_default: float | None = None
) -> Character:
    """Rename or change the default scale; the trigger word never changes with a rename
    (the LoRA was trained on it)."""
    character = character_for(owner, character_id)
    if name is not None:
        name = name.strip()
        if not 1 <= len(name) <= 60:
            raise InvalidInput(_("캐릭터 이름을 1~60자로 입력해주세요."))
        character.name = name
    if lora_scale_default is not None:
        scale = check_scale(lora_scale_default)
        # Only a real change counts as the user's choice (the settings form always sends the
        # value): from then on the scale sweep no longer sets it (issue 16).
        if scale != round(character.lora_scale_default, 2):
            character.lora_scale_user_set = True
        character.lora_scale_default = scale
    character.save(update_fields=["name", "lora_scale_default", "lora_scale_user_set"])
    if character.status == CharacterStatus.ACTIVE and character.local_backup_path:
        backup.sync_local_copy(character)  # metadata.json and the index carry the new name
    return character


# --- delete, undelete, purge --------------------------------------------------------------------
def delete_character(*, owner, character_id) -> Character:
    """Soft delete: out of every list and dropdown, 404 to the API; purged later."""
    character = character_for(owner, character_id)
    if character.training_job and character.training_job.state in ("queued", "running"):
        raise Conflict(_("학습 중인 캐릭터는 삭제할 수 없습니다. 학습이 끝난 뒤 삭제해주세요."))
    character.status = CharacterStatus.DELETED
    character.deleted_at = timezone.now()
    character.save(update_fields=["status", "deleted_at"])
    _remove_local_copy(character)
    return character


def _remove_local_copy(character: Character) -> None:
    try:
        backup.remove_local_backup(character)
    except OSError:
        logger.exception("could not remove the local backup of character %s", character.pk)


def undelete_character(character: Character) -> Character:
    """Support staff, within SOFT_DELETE_DAYS: back to what it was (active if it has a LoRA)."""
    if character.status != CharacterStatus.DELETED:
        return character
    character.status = (
        CharacterStatus.ACTIVE if character.current_version_id else CharacterStatus.FAILED
    )
    character.deleted_at = None
    character.save(update_fields=["status", "deleted_at"])
    if character.status == CharacterStatus.ACTIVE:
        backup.sync_local_copy(character)
    return character


def character_files(character: Character) -> set[str]:
    """Every stored file that belongs to the character alone (the photo may be shared by
    other characters made from it, so it is not included)."""
    names = {character.lora_file.name, character.training_data.name}
    for version in character.versions.all():
        names |= {version.lora_file.name, version.training_data.name}
    names |= {s.image.name for s in character.samples.all()}
    names |= {g.image.name for g in character.gallery.all()}
    names |= {s.image.name for s in character.sweep.all()} | {character.reference_sheet.name}
    # Reference-mode images copied out of the training ZIP (characters.references); the cuts
    # and the photo it may refer to are not the character's own copies.
    names |= {r.get("image") for r in character.reference_images or []
              if r.get("source") == "sheet"}
    return {n for n in names if n}


def purge_character(character: Character) -> None:
    """Rows and files, for good."""
    files = character_files(character)
    with transaction.atomic():
        character.delete()
        # The jobs stay (spend history) but no longer point at the files deleted below.
        RemoteCall.objects.filter(output_file__in=files).update(output_file="")
    for name in files:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s while purging", name)


def purge_deleted(now=None) -> int:
    """Daily: purge characters deleted more than SOFT_DELETE_DAYS ago."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SOFT_DELETE_DAYS)
    doomed = list(Character.objects.filter(status=CharacterStatus.DELETED, deleted_at__lt=cutoff))
    for character in doomed:
        purge_character(character)
    return len(doomed)


# --- test generate ------------------------------------------------------------------------------
def with_trigger(prompt: str, trigger_word: str) -> str:
    """The trigger word goes first, once: not again if the user already typed it."""
    prompt = (prompt or "").strip()
    if re.search(rf"(?<![A-Za-z0-9_]){re.escape(trigger_word)}(?![A-Za-z0-9_])", prompt):
        return prompt
    return f"{trigger_word}, {prompt}" if prompt else trigger_word


def test_generate(
    *, owner, character_id, prompt: str, scale: float | None = None, image_size: str = "square_hd"
) -> tuple[Job, CharacterImage]:
    character = character_for(owner, character_id)
    if character.status != CharacterStatus.ACTIVE or not character.lora_url:
        raise Conflict(_("학습이 끝난 캐릭터만 테스트 생성할 수 있습니다."))
    if len(prompt or "") > 500:
        raise InvalidInput(_("프롬프트는 500자 이내로 입력해주세요."))
    if image_size not in IMAGE_SIZES:
        raise InvalidInput(_("지원하지 않는 이미지 크기입니다."))
    scale = check_scale(character.lora_scale_default if scale is None else scale)
    # Korean in, Korean out (issue 15): the page shows the words typed, fal gets English.
    full_prompt = with_trigger(prompt_english(prompt), character.trigger_word)
    seed = random.randint(0, 2**31 - 1)
    arguments = {
        "prompt": full_prompt,
        "loras": [{"path": character.lora_url, "scale": scale}],
        "image_size": image_size,
        "num_inference_steps": settings.INFERENCE_STEPS,
        "seed": seed,
        "num_images": 1,
        "enable_safety_checker": True,
    }
    with transaction.atomic():
        job = jobs.create_job(
            owner=owner,
            kind=TEST_IMAGE.name,
            calls=[jobs.CallSpec(settings.FAL_ENDPOINTS["lora"], arguments)],
            subject={"character": character.pk},
            limited=True,
        )
        image = CharacterImage.objects.create(
            character=character,
            version=character.current_version,
            prompt=full_prompt,
            scale=scale,
            image_size=image_size,
            seed=seed,
            call=job.calls.get(),
        )
    return job, image


def test_image_finished(call: RemoteCall) -> None:
    image = CharacterImage.objects.filter(call=call).first()
    if image is None:
        return
    if call.state == CallState.SUCCEEDED and flagged_unsafe(call.result):
        image.error = str(SAFETY_FILTER_MESSAGE)  # a blacked-out picture is not shown
    elif call.state == CallState.SUCCEEDED and call.output_file:
        image.image = call.output_file.name
        image.seed = (call.result or {}).get("seed", image.seed)
        image.error = ""
        image.identity = likeness.judge_file(image.image, checks.anchor_of(image.character))
    else:
        image.error = call.error_message or _("생성에 실패했습니다.")
    image.save(update_fields=["image", "seed", "error", "identity"])


# --- shapes ---------------------------------------------------------------------------------------
def character_dict(character: Character) -> dict:
    """SPEC §5.2, plus what the cards show."""
    version = character.current_version
    return {
        "id": str(character.public_id),
        "name": character.name,
        "trigger_word": character.trigger_word,
        "style_id": character.style_id,
        "style_label": str(character.style_label),
        "lora_url": character.lora_url,
        "lora_scale_default": character.lora_scale_default,
        "training_images_count": character.training_images_count,
        "candidate_images_count": character.candidate_images_count,
        "training_steps": character.training_steps,
        # issue 16: the composed, labelled sheet of the selected cuts (a PNG), not the ZIP
        "reference_sheet_url": media_url(character.reference_sheet.name)
        if character.reference_sheet
        else None,
        "sample_images": [media_url(s.image.name) for s in current_samples(character) if s.image],
        "sample_identity": [s.identity for s in current_samples(character) if s.image],
        **_sweep_fields(character),
        "original_photo_url": media_url(character.photo.image.name) if character.photo else None,
        "created_at": character.created_at,
        "trained_at": character.trained_at,
        "status": character.status,
        "local_backup_path": character.local_backup_path,
        "lora_file_backed_up": character.lora_file_backed_up,
        "version": version.number if version else None,
        "failure_message": _(character.failure_message) if character.failure_message else "",
    }


def _sweep_fields(character: Character) -> dict:
    sweep = sweep_of(character)
    return {
        "recommended_scale": sweep["recommended_scale"],
        "recommended_scale_reason": sweep["reason"],
        "sweep_running": sweep["running"],
        "sweep_images": [
            {k: i[k] for k in ("scale", "prompt", "seed", "url", "identity", "chosen")}
            for i in sweep["images"]
        ],
    }


def gallery_dict(image: CharacterImage) -> dict:
    shown = likeness.display(image.identity, drawn=likeness.is_drawn(image.character.style_id))
    return {
        "id": image.pk,
        "prompt": image.prompt,
        "scale": image.scale,
        "image_size": image.image_size,
        "seed": image.seed,
        "url": media_url(image.image.name) if image.image else None,
        "error": image.error,
        "identity": image.identity,
        "identity_words": shown["words"] if image.image else "",
        "identity_tone": shown["tone"],
        "created_at": image.created_at,
    }
