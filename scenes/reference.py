"""Reference mode (issue 17): a scene drawn from a character's best cuts, with no LoRA.

FAL_ENDPOINT_REFERENCE (fal-ai/flux-2/edit, FAL.md §5) takes up to FAL_REFERENCE_MAX_IMAGES
`image_urls` and a prompt that names each person by the images that show them. So a
character can be used as soon as it exists (after prepare-training-data), while it trains,
if its training failed, and after: `method` "lora" (today's path, needs an active LoRA) or
"reference"; by default "lora" when every character has an active LoRA, else "reference".

- one character: its references (characters.references, best first), "the person in the
  reference images", then the scene words (English, as for LoRA scenes) and the style;
- two characters: A's references then B's (two each with a 4-image limit), "the person in
  images 1–2" on the left and "the person in images 3–4" on the right, A left as in LoRA
  scenes; one pass (identity separation needs a LoRA per face).

The references are uploaded where the backend reads them in the worker (on_job_start), each
reused while fresh (webtoon.jobs.hosting). The scene keeps `inputs["method"]` and
`inputs["references"]` (per role: cut number, label, angle, source, stored image); the
picture, seed, cost and each character's identity come back as for any scene.
"""

from __future__ import annotations

import logging
import random
from decimal import Decimal

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _

from characters import references as character_references
from characters.enums import CharacterStatus
from characters.models import Character
from webtoon.exceptions import InvalidInput
from webtoon.jobs import hosting, pricing
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, HostedFile, Job
from webtoon.media import media_url
from webtoon.prompting.translate import scene_english as english

from . import separation
from .models import Scene, SceneCharacter
from .vocabulary import EXPRESSIONS, PLACES, SITUATIONS

logger = logging.getLogger(__name__)

LORA, REFERENCE = "lora", "reference"
METHODS = (LORA, REFERENCE)
GUIDANCE_SCALE = 2.5  # fal-ai/flux-2/edit's default (FAL.md §4)
EXPLANATION = "학습 전에도 바로 사용 · 닮음 정도는 학습 후가 더 높을 수 있습니다"
METHOD_LABELS = {LORA: "학습된 LoRA", REFERENCE: "참조 이미지"}
UNKNOWN_METHOD = "알 수 없는 생성 방식입니다. 'lora' 또는 'reference' 중에서 골라주세요."
NOT_TRAINED = (
    "'%(name)s'은(는) 아직 학습이 끝나지 않은 캐릭터입니다. "
    "참조 이미지 방식으로는 지금 바로 만들 수 있습니다."
)

REFERENCE_SCENE = register(
    JobKind(
        name="reference_scene",
        label="씬 생성 (참조 이미지)",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        # The endpoint's price (FAL_PRICES) when listed, else one styled image, the same
        # endpoint the cuts use.
        cost_setting="COST_PER_IMAGE_GENERATION",
        expected_seconds=20,
        on_job_start="scenes.reference.prepare_job",
        on_call_finished="scenes.services.scene_finished",
    )
)


# --- which method -----------------------------------------------------------------------------
def has_lora(character: Character) -> bool:
    return character.status == CharacterStatus.ACTIVE and bool(character.lora_url)


def resolve(characters: list[Character], method: str | None) -> str:
    """The method asked for, or the default for these characters."""
    if not method:
        return LORA if all(has_lora(c) for c in characters) else REFERENCE
    if method not in METHODS:
        raise InvalidInput(_(UNKNOWN_METHOD))
    return method


def scene_method(scene: Scene) -> str:
    """"reference" | "lora" (a scene with characters made before issue 17 too) | "" (prompt)."""
    method = (scene.inputs or {}).get("method")
    if method:
        return method
    return "" if scene.mode == Scene.Mode.PROMPT else LORA


# --- price ------------------------------------------------------------------------------------
def unit_cost(image_size: str) -> Decimal:
    """One reference-mode scene, as the cost notice, the job estimate and the ledger see it."""
    sized = {"image_size": image_size, "num_images": 1}
    return pricing.estimate(
        settings.FAL_ENDPOINTS["reference"], sized, REFERENCE_SCENE.unit_cost
    )


def estimate(image_size: str) -> dict:
    """The scene API's `estimate` shape for a reference scene (one call, no repaint)."""
    cost = unit_cost(image_size)
    return {
        "compose": float(cost),
        "inpaint_each": 0.0,
        "inpaint_count": 0,
        "total": float(cost),
        "total_krw": int((cost * Decimal(str(settings.KRW_PER_USD))).quantize(1)),
    }


# --- prompts and arguments ----------------------------------------------------------------------
def _images(start: int, count: int) -> str:
    return f"image {start}" if count == 1 else f"images {start}–{start + count - 1}"


def one_prompt(words: list[str], style: str = "") -> str:
    parts = ["the person in the reference images, same face, hair and clothes", *words, style]
    return ", ".join(p for p in parts if p)


def two_prompt(
    count_a: int, count_b: int, place: str, a_action: str, b_action: str, situation: str,
    style: str = "",
) -> str:
    """A on the left, B on the right, each named by its images (A's come first)."""
    prompt = (
        f"two people in {place}, "
        f"on the left the person in {_images(1, count_a)} is {a_action or 'standing'}, "
        f"on the right the person in {_images(count_a + 1, count_b)} is {b_action or 'standing'}"
    )
    return ", ".join(p for p in (prompt, situation, style) if p)


def arguments(scene: Scene, image_urls: list | None = None) -> dict:
    return {
        "prompt": scene.prompt,
        "image_urls": image_urls,  # filled in the worker (prepare_job)
        "image_size": scene.image_size,
        "num_inference_steps": scene.steps,
        "guidance_scale": GUIDANCE_SCALE,
        "seed": scene.seed,
        "num_images": 1,
        "enable_safety_checker": True,
        "output_format": "jpeg",
    }


# --- creating -------------------------------------------------------------------------------
def create(
    *, owner, mode: str, characters: list[Character], prompt: str, image_size: str, steps: int,
    inputs: dict, refs: list[list[dict]], warnings=(),
) -> Scene:
    """The scene, its cast and its one-call job (references chosen by the caller)."""
    roles_refs = {"AB"[i]: [_kept(r) for r in rs] for i, rs in enumerate(refs)}
    with transaction.atomic():
        scene = Scene.objects.create(
            owner=owner,
            mode=mode,
            prompt=prompt,
            image_size=image_size,
            steps=steps,
            seed=random.randint(0, 2**31 - 1),
            inputs={**inputs, "method": REFERENCE, "references": roles_refs},
            warnings=list(warnings),
        )
        SceneCharacter.objects.bulk_create(
            SceneCharacter(
                scene=scene,
                character=c,
                version=None,  # no LoRA in this scene
                role="AB"[i],
                trigger_word=c.trigger_word,
                lora_url="",
                scale=0.0,
            )
            for i, c in enumerate(characters)
        )
        job = jobs.create_job(
            owner=owner,
            kind=REFERENCE_SCENE.name,
            calls=[jobs.CallSpec(settings.FAL_ENDPOINTS["reference"], arguments(scene))],
            subject={"scene": scene.pk},
            limited=True,  # the owner's request (scene page, API, episode panels)
        )
        scene.job, scene.call = job, job.calls.get()
        scene.save(update_fields=["job", "call"])
    return scene


def _kept(ref: dict) -> dict:
    keys = ("image", "source", "number", "label", "angle")
    return {k: ref.get(k) for k in keys}


def references_of(characters: list[Character]) -> list[list[dict]]:
    """Each character's share of the endpoint's limit, best first (409 when one has none)."""
    share = character_references.per_character(len(characters))
    return [character_references.references_for(c, share) for c in characters]


# --- the job ----------------------------------------------------------------------------------
def prepare_job(job: Job) -> None:
    """on_job_start, in the worker: host each reference where the backend reads it."""
    scene = Scene.objects.filter(job=job).first()
    if scene is None:
        return
    refs = scene.inputs.get("references") or {}
    names = [r["image"] for role in sorted(refs) for r in refs[role]]
    for call in job.calls.filter(state=CallState.PENDING):
        urls = []
        for name in names:
            try:
                urls.append(hosted_url(name, call.backend))
            except (FileNotFoundError, OSError) as exc:  # gone since it was chosen
                logger.warning("reference %s of scene %s unreadable: %r", name, scene.pk, exc)
        # None readable: fal refuses the empty list (422) and the scene says it failed.
        call.arguments["image_urls"] = urls
        call.save(update_fields=["arguments"])


def hosted_url(storage_name: str, backend_name: str) -> str:
    """Our stored image where the backend can fetch it: the last upload while it is fresh
    (hosting re-uploads an old one), else a new upload."""
    known = (
        HostedFile.objects.filter(storage_name=storage_name, backend=backend_name, replaced_by="")
        .order_by("-uploaded_at")
        .first()
    )
    if known is not None:
        return hosting.fresh_url(known.url, backend_name)
    with default_storage.open(storage_name, "rb") as fh:
        data = fh.read()
    ext = storage_name.rsplit(".", 1)[-1].lower()
    content_type = "image/png" if ext == "png" else "image/jpeg"
    return hosting.upload(
        backend_name, data, content_type=content_type, file_name=f"reference.{ext}",
        storage_name=storage_name,
    )


# --- what the API and pages show -----------------------------------------------------------------
def references_out(scene: Scene) -> list[dict]:
    refs = (scene.inputs or {}).get("references") or {}
    return [
        {
            "role": role,
            "number": r.get("number"),
            "label": r.get("label") or "",
            "angle": r.get("angle") or "",
            "source": r.get("source") or "",
            "image_url": media_url(r["image"]) if r.get("image") else None,
        }
        for role in sorted(refs)
        for r in refs[role]
    ]


def scene_cost(scene: Scene) -> float:
    """What the scene's job cost so far (recorded), else its estimate."""
    job = scene.job
    if job is None:
        return 0.0
    return float(job.cost_recorded or job.cost_estimated or 0)


# --- the scene services' reference branch -------------------------------------------------------
def one_character(
    *, owner, character: Character, words: list[str], style: str, image_size: str, steps: int,
    inputs: dict,
) -> Scene:
    (refs,) = references_of([character])
    return create(
        owner=owner, mode=Scene.Mode.ONE, characters=[character],
        prompt=one_prompt(words, style), image_size=image_size, steps=steps, inputs=inputs,
        refs=[refs],
    )


def two_characters(
    *, owner, characters: list[Character], location: str, situation: str, a_action: str,
    b_action: str, style: str, image_size: str, steps: int,
) -> Scene:
    refs = references_of(characters)
    prompt = two_prompt(
        len(refs[0]), len(refs[1]), english(location, PLACES) or "a room",
        english(a_action, EXPRESSIONS), english(b_action, EXPRESSIONS),
        english(situation, SITUATIONS) if situation else "", style,
    )
    inputs = {"location": location, "situation": situation, "a_action": a_action,
              "b_action": b_action}
    if style:
        inputs["style"] = style
    return create(
        owner=owner, mode=Scene.Mode.TWO, characters=characters, prompt=prompt,
        image_size=image_size, steps=steps, inputs=inputs, refs=refs,
    )


def regenerate(owner, old: Scene) -> Scene:
    """The same reference scene (same references, prompt, size) with a new seed."""
    roles = list(old.cast.select_related("character").order_by("role"))
    characters = [r.character for r in roles]
    if any(c is None or c.status == CharacterStatus.DELETED for c in characters):
        raise InvalidInput(_("이 씬의 캐릭터가 삭제되어 다시 만들 수 없습니다."))
    stored = old.inputs.get("references") or {}
    refs = [stored.get(r.role) or [] for r in roles]
    inputs = {k: v for k, v in old.inputs.items() if k not in ("references", "method", "twin")}
    return create(
        owner=owner, mode=old.mode, characters=characters, prompt=old.prompt,
        image_size=old.image_size, steps=old.steps, inputs=inputs, refs=refs,
        warnings=old.warnings,
    )


# --- the compare view -----------------------------------------------------------------------------
def other_method(scene: Scene) -> str:
    return LORA if scene_method(scene) == REFERENCE else REFERENCE


def twin_of(scene: Scene) -> Scene | None:
    twin = (scene.inputs or {}).get("twin")
    if not twin:
        return None
    return Scene.objects.filter(public_id=twin, owner=scene.owner).first()


def compare(*, owner, scene_id) -> tuple[Scene, Scene]:
    """The same scene made the other way (once; asking again returns the pair), linked to
    it: (LoRA scene, reference scene)."""
    from . import services  # lazy: services imports this module

    scene = services.scene_for(owner, scene_id)
    if scene.mode == Scene.Mode.PROMPT:
        raise InvalidInput(_("캐릭터가 있는 씬만 두 방식으로 비교할 수 있습니다."))
    twin = twin_of(scene)
    if twin is None:
        roles = list(scene.cast.select_related("character").order_by("role"))
        if any(r.character is None for r in roles):
            raise InvalidInput(_("이 씬의 캐릭터가 삭제되어 비교할 수 없습니다."))
        ids = [r.character.public_id for r in roles]
        inputs, method = scene.inputs, other_method(scene)
        with transaction.atomic():
            if scene.mode == Scene.Mode.ONE:
                twin = services.generate_with_character(
                    owner=owner, character_id=ids[0], expression=inputs.get("expression", ""),
                    location=inputs.get("location", ""), situation=inputs.get("situation", ""),
                    image_size=scene.image_size, style=inputs.get("style", ""), method=method,
                )
            else:
                twin = services.generate_two_characters(
                    owner=owner, character_a_id=ids[0], character_b_id=ids[1],
                    location=inputs.get("location", ""), situation=inputs.get("situation", ""),
                    a_action=inputs.get("a_action", ""), b_action=inputs.get("b_action", ""),
                    style=inputs.get("style", ""), method=method,
                )
            for one, other in ((scene, twin), (twin, scene)):
                one.inputs = {**one.inputs, "twin": str(other.public_id)}
                one.save(update_fields=["inputs"])
    pair = (scene, twin)
    return pair if scene_method(scene) == LORA else (twin, scene)


def compare_price(scene: Scene) -> Decimal:
    """What making the other one costs (shown on the compare button)."""
    if other_method(scene) == REFERENCE:
        return unit_cost(scene.image_size)
    if scene.mode == Scene.Mode.TWO:
        return separation.total(scene.image_size)  # separated by default
    return Decimal(str(separation.estimate(False, scene.image_size)["total"]))


def can_compare(scene: Scene) -> bool:
    """Every character still there and, for the LoRA twin, trained."""
    roles = list(scene.cast.all())
    if scene.mode == Scene.Mode.PROMPT or not roles:
        return False
    if any(r.character is None or r.character.status == CharacterStatus.DELETED for r in roles):
        return False
    return other_method(scene) == REFERENCE or all(has_lora(r.character) for r in roles)
