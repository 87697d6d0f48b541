"""API for steps 5–8: packaging, training and its status (mounted at /api/character/)."""

from uuid import UUID

from ninja import Field, Router, Schema, Status

from webtoon.schemas import API_ERRORS, PAID_ERRORS, errors

from . import queries, training

router = Router(tags=["character"])

ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)


class PrepareIn(Schema):
    session_id: UUID
    character_name: str = Field(..., min_length=1, max_length=60)
    trigger_word: str | None = Field(None, max_length=40)


class PrepareOut(Schema):
    character_id: str
    training_data_url: str
    trigger_word: str
    image_count: int
    total_size_mb: float
    captions_included: bool
    cost: dict


class StartIn(Schema):
    character_id: UUID
    confirm_cost: bool = False


class StartOut(Schema):
    task_id: str
    character_id: str
    status: str
    queued: bool
    estimated_time_seconds: int
    message: str


class TestImageOut(Schema):
    url: str | None
    status: str


class TrainingStatusOut(Schema):
    task_id: str
    character_id: str
    status: str
    queued: bool
    progress_percent: int
    progress_is_estimate: bool
    estimated_remaining_seconds: int
    current_step: int
    total_steps: int
    elapsed_seconds: int
    cost: float
    message: str
    # "대기 중 (앞에 N건)" while it waits for one of the account's slots at fal, or the notice
    # that generation is paused for everybody (fal refused the account); "" otherwise.
    wait_message: str
    # The 3 test images made after training: [{url, status}], status ready | generating |
    # failed (empty until the training succeeded).
    test_images: list[TestImageOut] = []


# 503: fal could not host the training ZIP (nothing is kept; the user may try again).
@router.post("/prepare-training-data", response={201: PrepareOut, **ERRORS, **errors(503)})
def prepare_training_data(request, payload: PrepareIn):
    character = training.prepare_training_data(
        owner=request.auth,
        session_id=payload.session_id,
        character_name=payload.character_name,
        trigger_word=payload.trigger_word,
    )
    return Status(
        201,
        {
            "character_id": str(character.public_id),
            "training_data_url": character.training_data_url,
            "trigger_word": character.trigger_word,
            "image_count": character.training_images_count,
            "total_size_mb": round(character.training_data_size / 2**20, 2),
            "captions_included": True,
            "cost": training.cost_breakdown(character),
        },
    )


@router.post("/start-training", response={202: StartOut, **COSTLY})
def start_training(request, payload: StartIn):
    job = training.start_training(
        owner=request.auth, character_id=payload.character_id, confirm_cost=payload.confirm_cost
    )
    character = queries.character_for(request.auth, payload.character_id)
    status = training.status_of(character, job, job.calls.first())
    return Status(
        202,
        {
            "task_id": str(job.public_id),
            "character_id": str(character.public_id),
            "status": status["status"],
            "queued": status["queued"],
            "estimated_time_seconds": training.EXPECTED_TRAINING_SECONDS,
            "message": status["message"],
        },
    )


@router.get("/training-status/{task_id}", response={200: TrainingStatusOut, **ERRORS})
def training_status(request, task_id: UUID):
    return training.training_status(owner=request.auth, task_id=task_id)
