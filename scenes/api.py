"""Scene API (mounted at /api/scene/): SPEC §8 scenes, plus the gallery."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Query, Router, Schema, Status

from characters.schemas import IdentityOut
from webtoon.schemas import API_ERRORS, PAID_ERRORS

from . import reference, separation, services
from .models import Scene
from .presenters import scene_dict

router = Router(tags=["scene"])

ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)


class OneIn(Schema):
    character_id: UUID | None = Field(None, description="null: prompt mode (no LoRA)")
    lora_scale: float | None = Field(None, description="default: the character's")
    expression: str = Field("", max_length=200)
    location: str = Field("", max_length=200)
    situation: str = Field("", max_length=500)
    image_size: str = services.ONE_SIZE
    method: Literal["lora", "reference"] | None = Field(
        None, description="lora: the trained LoRA; reference: FAL_ENDPOINT_REFERENCE with the "
        "character's best cuts as image_urls (usable before training). Default: lora when the "
        "character has an active LoRA, else reference",
    )


class TwoIn(Schema):
    character_a_id: UUID
    character_b_id: UUID
    character_c_id: UUID | None = Field(None, description="not supported: always 422")
    location: str = Field("", max_length=200)
    situation: str = Field("", max_length=500)
    a_action: str = Field("", max_length=200, description="A's expression/action")
    b_action: str = Field("", max_length=200, description="B's expression/action")
    lora_scale_a: float = services.TWO_SCALES[0]
    lora_scale_b: float = services.TWO_SCALES[1]
    separate_identities: bool = Field(
        True,
        description="compose with both LoRAs, then repaint each face with only its own LoRA "
        "(fal-ai/flux-lora/inpainting, one call per character); false: one pass",
    )
    method: Literal["lora", "reference"] | None = Field(
        None, description="lora needs both characters trained; reference: A's references "
        "then B's as image_urls, one pass. Default: lora when both have an active LoRA",
    )


class CastOut(Schema):
    role: str
    character_id: str | None
    trigger_word: str
    version: int | None
    scale: float
    identity: IdentityOut | None = Field(
        None, description="the face matched to this character against its photo; null: not "
        "measured (still generating, or the photo has no face)"
    )
    identity_words: str


class EstimateOut(Schema):
    compose: float
    inpaint_each: float
    inpaint_count: int
    total: float
    total_krw: int


class StageOut(Schema):
    stage: str = Field(description="compose | inpaint_a | inpaint_b")
    label: str
    image_url: str | None
    cost: float
    arguments: dict


class ReferenceOut(Schema):
    role: str
    number: int | None = Field(description="the cut's number; null: the photo")
    label: str
    angle: str = Field(description="front | three_quarter | profile | other")
    source: str = Field(description="cut | sheet (training images) | photo")
    image_url: str | None


class SceneOut(Schema):
    scene_id: str
    task_id: str | None
    mode: str
    status: str
    prompt: str
    image_size: str
    num_inference_steps: int
    seed: int | None
    image_url: str | None
    error: str
    # "대기 중 (앞에 N건)" while it waits for a slot at fal, or that generation is paused.
    wait_message: str = ""
    warnings: list[str]
    characters: list[CastOut]
    separate_identities: bool
    separation: str = Field(description="'' (one pass) | running | done | skipped | failed")
    estimate: EstimateOut
    stages: list[StageOut]
    retry_suggested: bool = Field(description="a character came out `different`: regenerate")
    method: str = Field(description="lora | reference | '' (prompt mode)")
    references: list[ReferenceOut] = Field(description="reference mode: the images sent, in order")
    cost: float = Field(description="$ recorded for the scene's calls (its estimate until then)")
    compare_scene_id: str | None = Field(None, description="the same scene made the other way")
    created_at: datetime


class ListIn(Schema):
    character_id: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


def _reloaded(scene: Scene) -> dict:
    scene = Scene.objects.select_related("job").prefetch_related(
        "cast__character", "cast__version"
    ).get(pk=scene.pk)
    return scene_dict(scene)


@router.post("/generate-with-character", response={202: SceneOut, **COSTLY})
def generate_with_character(request, payload: OneIn):
    scene = services.generate_with_character(
        owner=request.auth,
        character_id=payload.character_id,
        scale=payload.lora_scale,
        expression=payload.expression,
        location=payload.location,
        situation=payload.situation,
        image_size=payload.image_size,
        method=payload.method,
    )
    return Status(202, _reloaded(scene))


@router.post("/generate-two-characters", response={202: SceneOut, **COSTLY})
def generate_two_characters(request, payload: TwoIn):
    scene = services.generate_two_characters(
        owner=request.auth,
        character_a_id=payload.character_a_id,
        character_b_id=payload.character_b_id,
        scale_a=payload.lora_scale_a,
        scale_b=payload.lora_scale_b,
        location=payload.location,
        situation=payload.situation,
        a_action=payload.a_action,
        b_action=payload.b_action,
        extra_character_ids=[payload.character_c_id] if payload.character_c_id else None,
        separate_identities=payload.separate_identities,
        method=payload.method,
    )
    return Status(202, _reloaded(scene))


class EstimateIn(Schema):
    separate_identities: bool = True


@router.get("/estimate-two-characters", response={200: EstimateOut, **ERRORS})
def estimate_two_characters(request, params: Query[EstimateIn]):
    """What a two-character scene will cost, before it is paid (issue 16)."""
    return separation.estimate(params.separate_identities)


@router.get("/list", response={200: list[SceneOut], **ERRORS})
def scene_list(request, params: Query[ListIn]):
    scenes = services.scenes_for(request.auth, params.character_id).select_related("job")
    scenes = scenes.prefetch_related("cast__version")[: params.limit]
    return [scene_dict(s) for s in scenes]


@router.get("/{uuid:scene_id}", response={200: SceneOut, **ERRORS})
def scene_detail(request, scene_id: UUID):
    scene = services.scene_for(request.auth, scene_id)
    if scene.job:
        services.jobs.request_refresh(scene.job)
    return _reloaded(scene)


@router.post("/{uuid:scene_id}/regenerate", response={202: SceneOut, **COSTLY})
def regenerate(request, scene_id: UUID):
    return Status(202, _reloaded(services.regenerate(owner=request.auth, scene_id=scene_id)))


class CompareOut(Schema):
    lora: SceneOut | None = Field(description="null: not made yet (POST …/compare makes it)")
    reference: SceneOut | None = Field(description="null: not made yet")


@router.post("/{uuid:scene_id}/compare", response={202: CompareOut, **COSTLY})
def compare(request, scene_id: UUID):
    """The same scene made the other way (issue 17), side by side with it; asking again
    returns the same pair without paying again."""
    lora, ref = reference.compare(owner=request.auth, scene_id=scene_id)
    return Status(202, {"lora": _reloaded(lora), "reference": _reloaded(ref)})


@router.get("/{uuid:scene_id}/compare", response={200: CompareOut, **ERRORS})
def compare_detail(request, scene_id: UUID):
    """The scene and its twin made the other way (null until POST …/compare made it)."""
    scene = services.scene_for(request.auth, scene_id)
    twin = reference.twin_of(scene)
    for one in (scene, twin):
        if one is not None and one.job:
            services.jobs.request_refresh(one.job)
    lora, ref = (scene, twin) if reference.scene_method(scene) == reference.LORA else (twin, scene)
    return {"lora": _reloaded(lora) if lora else None, "reference": _reloaded(ref) if ref else None}


@router.delete("/{uuid:scene_id}", response={204: None, **ERRORS})
def delete(request, scene_id: UUID):
    services.delete_scene(owner=request.auth, scene_id=scene_id)
    return Status(204, None)
