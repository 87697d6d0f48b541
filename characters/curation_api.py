"""API for step 4: curation of the cuts (mounted at /api/character/)."""

from typing import Literal
from uuid import UUID

from ninja import Field, Router, Schema, Status

from webtoon.schemas import API_ERRORS, PAID_ERRORS

from . import curation, training

router = Router(tags=["character"])

ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)


class SelectCutsIn(Schema):
    session_id: UUID
    selected_cut_ids: list[int] = Field(..., description="cut numbers to keep (1-based)")


class CoverageOut(Schema):
    category: str
    label: str
    count: int
    short: bool


class SelectCutsOut(Schema):
    selected_count: int
    total_cuts: int
    meets_minimum: bool
    estimated_training_cost: float
    estimated_training_time_seconds: int
    warning: str
    coverage: list[CoverageOut]


class AdditionalIn(Schema):
    session_id: UUID
    count: int = Field(4, ge=1, le=curation.MAX_ADDITIONAL)
    category: Literal["expression", "angle", "pose", "scene"] | None = None


class AdditionalOut(Schema):
    task_id: str
    status: str
    category: str
    cut_ids: list[int]
    total_cuts: int
    estimated_cost: float


class RegenerateIn(Schema):
    session_id: UUID
    cut_id: int


class RegenerateOut(Schema):
    task_id: str
    status: str
    cut_id: int
    estimated_cost: float


@router.post("/select-cuts", response={200: SelectCutsOut, **ERRORS})
def select_cuts(request, payload: SelectCutsIn):
    summary = curation.select_cuts(
        owner=request.auth, session_id=payload.session_id, numbers=payload.selected_cut_ids
    )
    return {
        **summary.as_api(),
        "estimated_training_cost": float(training.training_cost()),
        "estimated_training_time_seconds": training.EXPECTED_TRAINING_SECONDS,
    }


@router.post("/generate-additional", response={202: AdditionalOut, **COSTLY})
def generate_additional(request, payload: AdditionalIn):
    job, cuts = curation.generate_additional(
        owner=request.auth,
        session_id=payload.session_id,
        count=payload.count,
        category=payload.category,
    )
    session = cuts[0].session
    return Status(
        202,
        {
            "task_id": str(job.public_id),
            "status": "generating",
            "category": curation.api_category_of(cuts[0].category),
            "cut_ids": [c.number for c in cuts],
            "total_cuts": session.cuts.count(),
            "estimated_cost": float(job.cost_estimated),  # the job's own estimate: one sum
        },
    )


@router.post("/regenerate-cut", response={202: RegenerateOut, **COSTLY})
def regenerate_cut(request, payload: RegenerateIn):
    job = curation.regenerate_cut(
        owner=request.auth, session_id=payload.session_id, number=payload.cut_id
    )
    return Status(
        202,
        {
            "task_id": str(job.public_id),
            "status": "generating",
            "cut_id": payload.cut_id,
            "estimated_cost": float(job.cost_estimated),
        },
    )
