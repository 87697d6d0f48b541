"""API for steps 2–3: style selection and the 24-cut generation (mounted at /api/character/)."""

import json
from typing import Literal
from uuid import UUID

from django.http import HttpResponse
from ninja import Field, Router, Schema, Status
from ninja.responses import NinjaJSONEncoder

from webtoon import answers
from webtoon.schemas import API_ERRORS, PAID_ERRORS

from . import generation, watching
from .schemas import IdentityOut

router = Router(tags=["character"])


ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)

StyleLiteral = Literal[
    "original", "realistic_sketch", "chibi_2head", "kakao_emoticon", "simple_lineart", "custom"
]


class SelectStyleIn(Schema):
    photo_id: UUID
    style_id: StyleLiteral = "original"
    custom_prompt: str | None = Field(None, max_length=200)


class SelectStyleOut(Schema):
    session_id: UUID
    selected_style: str
    estimated_cost: float
    estimated_time_seconds: int


class GenerateIn(Schema):
    session_id: UUID


class GenerateOut(Schema):
    task_id: str
    status: str
    total_cuts: int
    estimated_time_seconds: int


class CutOut(Schema):
    id: int
    number: int
    category: str
    label: str
    state: str
    url: str | None
    selected: bool
    error: str
    similarity: float | None = Field(None, description="identity distance to the photo")
    quality_ok: bool | None = Field(None, description="null until the check has run")
    quality_reasons: list[str] = []
    identity: IdentityOut | None = Field(
        None, description="same | unsure | different | no_face against the photo, near_copy"
    )


class GenerationStatusOut(Schema):
    task_id: str
    session_id: str
    status: str
    completed_cuts: int
    total_cuts: int
    preview_urls: list[str | None]
    message: str
    # "대기 중 (앞에 N건)" while the cuts wait for the account's slots at fal, or the notice
    # that generation is paused for everybody (fal refused the account); "" otherwise.
    wait_message: str
    cuts: list[CutOut]


@router.post("/select-style", response={201: SelectStyleOut, **ERRORS})
def select_style(request, payload: SelectStyleIn):
    session = generation.select_style(
        owner=request.auth,
        photo_id=payload.photo_id,
        style_id=payload.style_id,
        custom_prompt=payload.custom_prompt,
    )
    return Status(
        201,
        {
            "session_id": session.public_id,
            "selected_style": session.style_id,
            "estimated_cost": float(generation.estimated_generation_cost(None, session.style_id)),
            "estimated_time_seconds": generation.ESTIMATED_SECONDS,
        },
    )


@router.post("/generate-24-cuts", response={202: GenerateOut, **COSTLY})
def generate_24_cuts(request, payload: GenerateIn):
    job = generation.start_generation(owner=request.auth, session_id=payload.session_id)
    return Status(
        202,
        {
            "task_id": str(job.public_id),
            "status": "generating",
            "total_cuts": job.calls.count(),
            "estimated_time_seconds": generation.ESTIMATED_SECONDS,
        },
    )


@router.get("/generation-status/{task_id}", response={200: GenerationStatusOut, **ERRORS})
def generation_status(request, task_id: UUID):
    """The document is kept by the rows it is made of (watching): a script polling a session
    where nothing changed gets the same bytes without the document being made again."""
    job, watched = watching.watch_job(request.auth, task_id)
    body = answers.kept(
        "generation-status",
        (job.public_id, watched.parts),
        lambda: (_status_json(job, watched), None),
    )
    return HttpResponse(body, content_type="application/json; charset=utf-8")


def _status_json(job, watched: watching.Watched) -> str:
    """What ninja would answer for the document: its schema, then ninja's JSON renderer."""
    document = generation.generation_status(job, watched.session, watched.jobs)
    data = GenerationStatusOut.model_validate(document).model_dump()
    return json.dumps(data, cls=NinjaJSONEncoder)
