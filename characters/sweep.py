"""A default strength chosen by measurement (issue 16).

After every training (and retrain) a small scale sweep renders SCALE_SWEEP_PROMPTS at each of
SCALE_SWEEP_SCALES (`square`, one seed per prompt so only the strength changes) and measures
every image against the character's photo (characters.likeness). The recommended scale is the
lowest one whose measured images are all judged `same` (a lower scale leaves the prompt more
freedom), else the one with the best mean distance. It becomes the character's
lora_scale_default unless the user set that value.
"""

from __future__ import annotations

import random
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from webtoon.imaging.safety import SAFETY_FILTER_MESSAGE, flagged_unsafe
from webtoon.jobs import pricing
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, Job, RemoteCall
from webtoon.media import media_url

from . import checks, likeness
from .models import Character, CharacterVersion, SweepImage

SWEEP = register(
    JobKind(
        name="scale_sweep",
        label="강도 비교",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_LORA_INFERENCE",
        expected_seconds=20,
        partial_ok=True,
        on_call_finished="characters.sweep.sweep_image_finished",
        on_call_error="characters.lora_files.recover_expired_lora",
        on_job_finished="characters.sweep.sweep_finished",
    )
)
SIZE = "square"

LOWEST_SAME = gettext_noop(
    "%(scale)s부터 원본 사진과 같은 사람으로 보여, 가장 낮은 강도를 골랐습니다"
)
BEST_DISTANCE = gettext_noop("%(scale)s에서 가장 닮았습니다")
NOT_MEASURED = gettext_noop(
    "비교 이미지에서 얼굴을 찾지 못해 강도를 고르지 못했습니다 (기본값 유지)"
)


def scales() -> list[float]:
    return [round(float(s), 2) for s in settings.SCALE_SWEEP_SCALES]


def prompts() -> list[str]:
    return list(settings.SCALE_SWEEP_PROMPTS)


def image_count() -> int:
    return len(scales()) * len(prompts()) if scales() and prompts() else 0


def cost() -> Decimal:
    """What the sweep adds to a training (its cost notice shows it), priced like its calls."""
    each = pricing.estimate(settings.FAL_ENDPOINTS["lora"], {"image_size": SIZE}, SWEEP.unit_cost)
    return each * image_count()


def start_sweep(character: Character) -> Job | None:
    """The sweep for the character's current version (again: replaced); None when the
    settings ask for no sweep. A follow-up of the training: never refused by the limits."""
    version = character.current_version
    if version is None or not image_count():
        return None
    specs, rows = [], []
    rng = random.Random()
    for number, prompt in enumerate(prompts(), start=1):
        seed = rng.randint(0, 2**31 - 1)
        text = f"{character.trigger_word}, {prompt}"
        for scale in scales():
            slot = len(specs)
            specs.append(jobs.CallSpec(settings.FAL_ENDPOINTS["lora"],
                                       _arguments(character, text, scale, seed), slot=slot))
            rows.append((slot, scale, number, text, seed))
    with transaction.atomic():
        SweepImage.objects.filter(version=version).delete()
        job = jobs.create_job(
            owner=character.owner,
            kind=SWEEP.name,
            calls=specs,
            subject={"character": character.pk, "version": version.pk},
        )
        calls = {c.slot: c for c in job.calls.all()}
        SweepImage.objects.bulk_create(
            SweepImage(character=character, version=version, scale=scale, prompt_number=number,
                       prompt=text, seed=seed, call=calls[slot])
            for slot, scale, number, text, seed in rows
        )
        CharacterVersion.objects.filter(pk=version.pk).update(
            sweep_job=job, recommended_scale=None, scale_reason=""
        )
    return job


def _arguments(character: Character, prompt: str, scale: float, seed: int) -> dict:
    return {
        "prompt": prompt,
        "loras": [{"path": character.lora_url, "scale": scale}],
        "image_size": SIZE,
        "num_inference_steps": settings.INFERENCE_STEPS,
        "seed": seed,
        "num_images": 1,
        "enable_safety_checker": True,
    }


def sweep_image_finished(call: RemoteCall) -> None:
    row = SweepImage.objects.select_related("character__photo").filter(call=call).first()
    if row is None:
        return
    if call.state != CallState.SUCCEEDED or not call.output_file:
        row.error = call.error_message or _("생성에 실패했습니다.")
        row.save(update_fields=["error"])
        return
    if flagged_unsafe(call.result):  # a blacked-out picture measures nothing
        row.error = str(SAFETY_FILTER_MESSAGE)
        row.save(update_fields=["error"])
        return
    row.image = call.output_file.name
    row.seed = (call.result or {}).get("seed", row.seed)
    row.identity = likeness.judge_file(row.image, checks.anchor_of(row.character))
    row.save(update_fields=["image", "seed", "identity"])


def sweep_finished(job: Job) -> None:
    version = CharacterVersion.objects.filter(pk=job.subject.get("version")).first()
    if version is None:
        return
    rows = list(version.sweep_images.exclude(image=""))
    scale, reason = recommend(rows)
    version.recommended_scale, version.scale_reason = scale, reason
    version.save(update_fields=["recommended_scale", "scale_reason"])
    character = version.character
    if (
        scale is not None
        and character.current_version_id == version.pk
        and not character.lora_scale_user_set
    ):
        Character.objects.filter(pk=character.pk).update(lora_scale_default=scale)


def recommend(rows: list[SweepImage]) -> tuple[float | None, str]:
    """(scale, why in Korean): the lowest scale whose measured images are all `same`, else
    the best mean distance; (None, why) when no image had a face to measure."""
    by_scale: dict[float, list[float]] = {}
    verdicts: dict[float, list[str]] = {}
    for row in rows:
        value = row.identity or {}
        if value.get("distance") is None:
            continue
        by_scale.setdefault(row.scale, []).append(value["distance"])
        verdicts.setdefault(row.scale, []).append(value["verdict"])
    if not by_scale:
        return None, _(NOT_MEASURED)
    same = sorted(s for s, v in verdicts.items() if all(x == likeness.SAME for x in v))
    if same:
        return same[0], _(LOWEST_SAME) % {"scale": _fmt(same[0])}
    best = min(by_scale, key=lambda s: (sum(by_scale[s]) / len(by_scale[s]), s))
    return best, _(BEST_DISTANCE) % {"scale": _fmt(best)}


def _fmt(scale: float) -> str:
    return f"{scale:g}" if scale != int(scale) else f"{scale:.1f}"


# --- shapes ---------------------------------------------------------------------------------------
def sweep_of(character: Character) -> dict:
    """The current version's sweep: grid (rows = prompts, columns = scales), choice, why."""
    version = character.current_version
    if version is None:
        return {"running": False, "recommended_scale": None, "reason": "", "images": [],
                "grid": [], "scales": []}
    rows = list(version.sweep_images.all())
    job = version.sweep_job
    drawn = likeness.is_drawn(character.style_id)
    images = [
        {
            "scale": r.scale,
            "prompt": r.prompt,
            "prompt_number": r.prompt_number,
            "seed": r.seed,
            "url": media_url(r.image.name) if r.image else None,
            "identity": r.identity,
            "words": likeness.words(r.identity, drawn=drawn) if r.image else "",
            "error": r.error,
            "chosen": r.scale == version.recommended_scale,
        }
        for r in rows
    ]
    numbers = sorted({i["prompt_number"] for i in images})
    return {
        "running": bool(job and not job.is_terminal),
        "recommended_scale": version.recommended_scale,
        "reason": version.scale_reason,
        "scales": sorted({i["scale"] for i in images}),
        "images": images,
        "grid": [
            {"prompt": next(i["prompt"] for i in images if i["prompt_number"] == n),
             "cells": sorted((i for i in images if i["prompt_number"] == n),
                             key=lambda i: i["scale"])}
            for n in numbers
        ],
    }
