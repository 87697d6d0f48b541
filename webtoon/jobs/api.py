from datetime import datetime
from uuid import UUID

from ninja import Field, Router, Schema, Status

from webtoon.schemas import API_ERRORS, PAID_ERRORS

from . import queries, services
from .presenters import job_dict

router = Router(tags=["jobs"])

IMAGE_SIZES = "square_hd|square|portrait_4_3|portrait_16_9|landscape_4_3|landscape_16_9"


class OutputOut(Schema):
    slot: int
    state: str
    url: str | None
    queue_position: int | None
    error: str


class JobOut(Schema):
    id: str
    kind: str
    kind_label: str
    state: str
    state_label: str
    progress_percent: int
    # Why an unfinished job waits ("대기 중 (앞에 3건)", or fal's account paused); "" otherwise.
    wait_message: str
    cost_estimated: float
    cost_recorded: float
    error_code: str
    error_message: str
    refunded: bool
    refund_message: str
    created_at: datetime
    finished_at: datetime | None
    outputs: list[OutputOut]


class ImageJobIn(Schema):
    prompt: str = Field(..., min_length=1, max_length=1000)
    image_size: str = Field("square_hd", pattern=f"^({IMAGE_SIZES})$")


ERRORS = API_ERRORS
COSTLY = PAID_ERRORS  # + per-user rate limit / daily spend cap (429), fal down (503)


@router.post("/image", response={201: JobOut, **COSTLY}, summary="Generate one image (no LoRA)")
def image_job(request, payload: ImageJobIn):
    job = services.create_image_job(request.auth, payload.prompt.strip(), payload.image_size)
    return Status(201, job_dict(queries.job_for(request.auth, job.public_id)))


@router.get("/", response={200: list[JobOut], **ERRORS})
def list_jobs(request):
    return [job_dict(job) for job in queries.jobs_for(request.auth)[:50]]


@router.get("/{job_id}", response={200: JobOut, **ERRORS})
def job_status(request, job_id: UUID):
    job = queries.job_for(request.auth, job_id)
    services.request_refresh(job)
    return job_dict(job)


@router.post("/{job_id}/retry", response={200: JobOut, **COSTLY})
def retry(request, job_id: UUID):
    job = queries.job_for(request.auth, job_id)
    if job.state != "failed":
        return Status(409, {"detail": "실패한 작업만 다시 시도할 수 있습니다."})
    services.retry_job(job, limited=True)
    return job_dict(queries.job_for(request.auth, job_id))
