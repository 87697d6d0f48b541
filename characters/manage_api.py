"""API for My Characters (mounted at /api/character/): list, detail, edit, delete,
test-generate and its gallery."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.core.paginator import Paginator
from ninja import Field, Query, Router, Schema, Status

from webtoon.schemas import API_ERRORS, PAID_ERRORS

from . import management, queries, references, training
from .queries import character_for
from .schemas import IdentityOut

router = Router(tags=["character"])

ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)


class SweepImageOut(Schema):
    scale: float
    prompt: str
    seed: int | None
    url: str | None
    identity: IdentityOut | None
    chosen: bool


class MethodStatsOut(Schema):
    count: int = Field(description="finished scenes showing the character")
    measured: int = Field(description="of them, with a face measured against the photo")
    same: int = Field(description="of them, judged the same person")
    median_distance: float | None = Field(description="median identity distance; lower = closer")


class MethodComparisonOut(Schema):
    lora: MethodStatsOut
    reference: MethodStatsOut


class CharacterOut(Schema):
    id: str
    name: str
    trigger_word: str
    style_id: str
    style_label: str
    lora_url: str
    lora_scale_default: float
    training_images_count: int
    candidate_images_count: int
    training_steps: int
    reference_sheet_url: str | None
    sample_images: list[str]
    original_photo_url: str | None
    created_at: datetime
    trained_at: datetime | None
    status: str
    local_backup_path: str
    lora_file_backed_up: bool
    version: int | None
    failure_message: str
    # issue 16: identity of the test images, and the scale sweep after training
    sample_identity: list[IdentityOut | None]
    recommended_scale: float | None = Field(
        description="the scale the sweep measured as best; null: not measured (yet)"
    )
    recommended_scale_reason: str
    sweep_running: bool
    sweep_images: list[SweepImageOut]
    # issue 17: its LoRA scenes vs its reference scenes on identity (detail only)
    method_comparison: MethodComparisonOut | None = None


class CharacterListOut(Schema):
    count: int
    page: int
    pages: int
    items: list[CharacterOut]


class PageIn(Schema):
    page: int = Field(1, ge=1)
    page_size: int = Field(20, ge=1, le=100)


class CharacterPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=60)
    lora_scale_default: float | None = None


class TestGenerateIn(Schema):
    prompt: str = Field("", max_length=500)
    scale: float | None = None
    image_size: str = "square_hd"


class GalleryImageOut(Schema):
    id: int
    prompt: str
    scale: float
    image_size: str
    seed: int | None
    url: str | None
    error: str
    identity: IdentityOut | None = None
    identity_words: str = ""
    created_at: datetime


class TestGenerateOut(Schema):
    task_id: str
    status: str
    image: GalleryImageOut


@router.get("/list", response={200: CharacterListOut, **ERRORS})
def character_list(request, params: Query[PageIn]):
    paginator = Paginator(queries.characters_for(request.auth), params.page_size)
    page = paginator.get_page(params.page)
    return {
        "count": paginator.count,
        "page": page.number,
        "pages": paginator.num_pages,
        "items": [management.character_dict(c) for c in page.object_list],
    }


@router.get("/{uuid:character_id}", response={200: CharacterOut, **ERRORS})
def character_detail(request, character_id: UUID):
    character = character_for(request.auth, character_id)
    return {**management.character_dict(character),
            "method_comparison": references.method_comparison(character)}


@router.patch("/{uuid:character_id}", response={200: CharacterOut, **ERRORS})
def character_update(request, character_id: UUID, payload: CharacterPatch):
    character = management.update_character(
        owner=request.auth,
        character_id=character_id,
        name=payload.name,
        lora_scale_default=payload.lora_scale_default,
    )
    return management.character_dict(character)


@router.delete("/{uuid:character_id}", response={204: None, **ERRORS})
def character_delete(request, character_id: UUID):
    management.delete_character(owner=request.auth, character_id=character_id)
    return Status(204, None)


@router.post("/{uuid:character_id}/test-generate", response={202: TestGenerateOut, **COSTLY})
def test_generate(request, character_id: UUID, payload: TestGenerateIn):
    job, image = management.test_generate(
        owner=request.auth,
        character_id=character_id,
        prompt=payload.prompt,
        scale=payload.scale,
        image_size=payload.image_size,
    )
    image.refresh_from_db()
    body = {"task_id": str(job.public_id), "status": job.state}
    return Status(202, {**body, "image": management.gallery_dict(image)})


class RetrainIn(Schema):
    mode: Literal["new", "replace"] = Field(
        "new", description="new: add v(N+1) and make it current; replace: overwrite current"
    )
    confirm_cost: bool = False
    photo_ids: list[UUID] = Field(default_factory=list, description="photos from upload-photo")
    cut_ids: list[int] = Field(
        default_factory=list, description="cut numbers of the character's creation session"
    )


class RetrainOut(Schema):
    task_id: str
    character_id: str
    mode: str
    queued: bool
    image_count: int
    estimated_cost: float


@router.post("/{uuid:character_id}/retrain", response={202: RetrainOut, **COSTLY})
def retrain(request, character_id: UUID, payload: RetrainIn):
    job = training.retrain(
        owner=request.auth,
        character_id=character_id,
        mode=payload.mode,
        confirm_cost=payload.confirm_cost,
        photo_ids=payload.photo_ids,
        cut_ids=payload.cut_ids,
    )
    character = character_for(request.auth, character_id)
    return Status(
        202,
        {
            "task_id": str(job.public_id),
            "character_id": str(character.public_id),
            "mode": payload.mode,
            "queued": job.state == "waiting",
            "image_count": character.training_images_count,
            "estimated_cost": float(training.training_cost(character)),
        },
    )


@router.get("/{uuid:character_id}/gallery", response={200: list[GalleryImageOut], **ERRORS})
def gallery(request, character_id: UUID):
    character = character_for(request.auth, character_id)
    return [management.gallery_dict(i) for i in character.gallery.all()[:100]]
