"""Steps 2–3 of a new character: the style choice and the 24 cuts, generated together.

All cuts of a set are one job; the engine submits them at once and polls them together.
Hooks registered with the job kind turn finished calls into curated-grid cuts.
"""

from __future__ import annotations

import functools
import io
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from webtoon.answers import column, instances
from webtoon.exceptions import Conflict, InvalidInput
from webtoon.imaging.safety import SAFETY_FILTER_MESSAGE, flagged_unsafe
from webtoon.jobs import hosting, limits, pricing
from webtoon.jobs import services as jobs
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallState, Job, RemoteCall
from webtoon.jobs.presenters import wait_message
from webtoon.media import media_url
from webtoon.prompting.translate import english as prompt_english

from . import checks
from .enums import SessionState, StyleId
from .models import CreationSession, Cut, Photo
from .prompts import base_cuts, build_generation_prompt, style_prompt

ORIENTATION_TAG = 0x0112  # EXIF: how the picture must be turned to stand upright
CUT_SIZE = (1024, 1024)
ESTIMATED_SECONDS = 180

CUTS = register(
    JobKind(
        name="cuts",
        label="학습 이미지 생성",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_IMAGE_GENERATION",
        expected_seconds=60,
        partial_ok=True,
        on_job_start="characters.generation.prepare_job",
        on_call_finished="characters.generation.cut_finished",
        output_transform="characters.generation.normalize_cut_file",
        on_job_finished="characters.generation.set_finished",
    )
)


# --- step 2: style --------------------------------------------------------------------------
def estimated_generation_cost(
    count: int | None = None, style_id: str = StyleId.ORIGINAL
) -> Decimal:
    """What `count` cuts in this style cost: the price of the very call each cut makes
    (FAL_PRICES, e.g. Kontext per image), so the notice and the ledger agree."""
    count = settings.GENERATION_CUTS_COUNT if count is None else count
    endpoint, arguments = cut_endpoint_arguments(style_id, "")
    each = pricing.estimate(endpoint, arguments, CUTS.unit_cost)
    return (each * count).quantize(Decimal("0.01"))


def select_style(*, owner, photo_id, style_id: str, custom_prompt: str | None) -> CreationSession:
    photo = get_object_or_404(Photo, public_id=photo_id, owner=owner)
    custom = (custom_prompt or "").strip()
    if style_id not in StyleId.values:
        raise InvalidInput(_("알 수 없는 스타일입니다."))
    if style_id == StyleId.CUSTOM and not custom:
        raise InvalidInput(_("원하는 스타일을 설명해주세요."))
    if len(custom) > 200:
        raise InvalidInput(_("커스텀 스타일은 200자 이내로 입력해주세요."))
    if style_id == StyleId.CUSTOM:
        style_prompt(style_id, custom)  # Korean → English now, not under the cut job's locks
    return CreationSession.objects.create(
        owner=owner,
        photo=photo,
        style_id=style_id,
        custom_prompt=custom if style_id == StyleId.CUSTOM else "",
    )


def start_in_style(*, owner, photo_id, style_id: str, custom_prompt: str | None) -> CreationSession:
    """Steps 2 and 3 in one (the style page's button): the session and its 24 cuts, or
    neither, so a refused start (e.g. a per-user limit) leaves no empty session."""
    # A custom style in Korean is put into English before the transaction (it may wait on
    # fal for a few seconds); the 24 cut prompts then read the cache.
    prompt_english(custom_prompt or "", kind="style")
    with transaction.atomic():
        session = select_style(
            owner=owner, photo_id=photo_id, style_id=style_id, custom_prompt=custom_prompt
        )
        start_generation(owner=owner, session_id=session.public_id)
    return session


# --- step 3: generation ---------------------------------------------------------------------
def cut_call(session: CreationSession, cut: Cut) -> jobs.CallSpec:
    """The backend request for one cut. The photo URL is filled in by prepare_job, in the
    worker, once the photo is hosted where the backend can fetch it."""
    prompt = build_generation_prompt(session.style_id, session.custom_prompt, cut.pose_prompt)
    endpoint, arguments = cut_endpoint_arguments(session.style_id, prompt)
    return jobs.CallSpec(endpoint, arguments, slot=cut.number)


def cut_endpoint_arguments(style_id: str, prompt: str) -> tuple[str, dict]:
    if style_id == StyleId.ORIGINAL:
        endpoint = settings.FAL_ENDPOINTS["kontext"]
        arguments = {
            "prompt": prompt,
            "image_url": None,
            "aspect_ratio": "1:1",
            "num_images": 1,
            "output_format": "jpeg",
        }
    else:
        endpoint = settings.FAL_ENDPOINTS["styled"]
        arguments = {
            "prompt": prompt,
            "image_urls": None,
            "image_size": "square_hd",
            "num_images": 1,
            "output_format": "jpeg",
        }
    return endpoint, arguments


def start_generation(*, owner, session_id) -> Job:
    """Create the 24 cuts and one job that generates them all at once."""
    with transaction.atomic():
        limits.lock_owner(owner)  # the owner before the session, as everywhere (no deadlock)
        session = get_object_or_404(
            CreationSession.objects.select_for_update(), public_id=session_id, owner=owner
        )
        if session.cuts.exists():
            raise Conflict(_("이 세션의 컷은 이미 생성했습니다."))
        templates = base_cuts()[: settings.GENERATION_CUTS_COUNT]
        cuts = Cut.objects.bulk_create(
            Cut(
                session=session,
                number=i,
                template_id=t.id,
                category=t.category,
                pose_prompt=t.prompt,
                label_ko=t.label_ko,
            )
            for i, t in enumerate(templates, start=1)
        )
        job = start_cut_job(session, cuts)
    return job


def start_cut_job(session: CreationSession, cuts: list[Cut]) -> Job:
    """One job generating these cuts together (first 24, additional ones, or a single slot)."""
    job = jobs.create_job(
        owner=session.owner,
        kind=CUTS.name,
        calls=[cut_call(session, cut) for cut in cuts],
        subject={"session": session.pk},
        limited=True,  # only ever the owner's request: first 24, more cuts, one again
    )
    calls = {c.slot: c for c in job.calls.all()}
    for cut in cuts:
        cut.call = calls[cut.number]
    Cut.objects.bulk_update(cuts, ["call"])
    session.state = SessionState.GENERATING
    session.save(update_fields=["state", "updated_at"])
    return job


def photo_remote_url(photo: Photo, backend_name: str) -> str:
    """The photo hosted where the backend can fetch it (cached per backend)."""
    if photo.remote_url and photo.remote_backend == backend_name:
        return photo.remote_url
    with photo.image.open("rb") as fh:
        data = fh.read()
    url = hosting.upload(
        backend_name,
        data,
        content_type="image/jpeg",
        file_name="photo.jpg",
        storage_name=photo.image.name,
    )
    Photo.objects.filter(pk=photo.pk).update(remote_url=url, remote_backend=backend_name)
    photo.remote_url, photo.remote_backend = url, backend_name
    return url


def prepare_job(job: Job) -> None:
    session = CreationSession.objects.select_related("photo").get(pk=job.subject["session"])
    for call in job.calls.filter(state=CallState.PENDING):
        url = photo_remote_url(session.photo, call.backend)
        if "image_urls" in call.arguments:
            call.arguments["image_urls"] = [url]
        else:
            call.arguments["image_url"] = url
        call.save(update_fields=["arguments"])


def cut_finished(call: RemoteCall) -> None:
    cut = Cut.objects.select_related("session").filter(call=call).first()
    if cut is None:
        return
    if call.state != CallState.SUCCEEDED:
        cut.error = call.error_message or _("생성에 실패했습니다.")
        cut.selected = False
        cut.save(update_fields=["error", "selected"])
        return
    if flagged_unsafe(call.result):
        # fal blacked the picture out: nothing to train on or to select; [다시 생성] stays.
        cut.image, cut.error, cut.selected = "", str(SAFETY_FILTER_MESSAGE), False
        cut.quality_ok, cut.quality_reasons = False, [cut.error]
        cut.save(update_fields=["image", "error", "selected", "quality_ok", "quality_reasons"])
        return
    # The engine already made it a 1024x1024 JPEG (normalize_cut_file) in its thread pool.
    cut.image = call.output_file.name
    cut.error = ""
    cut.save(update_fields=["image", "error"])
    # The quality/identity check is CPU work (dlib): a task of its own, so the cut set
    # finishes as soon as fal does and the checks fill in right after.
    checks.request_check(cut)


def normalize_cut_file(path: str) -> str:
    """Job output transform: the downloaded result becomes the cut we store."""
    with open(path, "rb") as fh:
        data = normalize_cut(fh.read())
    with open(path, "wb") as fh:
        fh.write(data)
    return "jpg"


def normalize_cut(data: bytes) -> bytes:
    """A 1024×1024 JPEG (resized only when it is not that size already). A result that is
    one already (an RGB JPEG of that size, upright) is kept byte for byte: decoding and
    encoding it again costs CPU (24 times per set, in the pool's threads) and a generation
    of JPEG loss."""
    with Image.open(io.BytesIO(data)) as im:
        if _is_stored_form(im):
            return data
        im = ImageOps.exif_transpose(im).convert("RGB")
        if im.size != CUT_SIZE:
            im = ImageOps.fit(im, CUT_SIZE, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=95)
        return out.getvalue()


def _is_stored_form(im: Image.Image) -> bool:
    """Read from the header only; nothing is decoded."""
    orientation = im.getexif().get(ORIENTATION_TAG, 1)
    return im.format == "JPEG" and im.mode == "RGB" and im.size == CUT_SIZE and orientation == 1


def set_finished(job: Job) -> None:
    session = CreationSession.objects.get(pk=job.subject["session"])
    running = Job.objects.filter(
        kind=CUTS.name, subject__session=session.pk, state__in=("queued", "running")
    )
    if session.state == SessionState.GENERATING and not running.exists():
        session.state = SessionState.CURATING
        session.save(update_fields=["state", "updated_at"])


# --- status ---------------------------------------------------------------------------------
CUT_STATES = {
    CallState.PENDING: "pending",
    CallState.SUBMITTING: "generating",
    CallState.SUBMITTED: "generating",
    CallState.RUNNING: "generating",
    CallState.SUCCEEDED: "completed",
    CallState.FAILED: "failed",
    CallState.CANCELLED: "failed",
}


def generation_status(job: Job, session: CreationSession, jobs_of_session: list[Job]) -> dict:
    """The whole session's cuts, whichever of the session's generation jobs is asked (the
    API door reads the rows through watching.watch_job, which asks for the refresh first)."""
    cuts = cut_rows(session)
    states = [row_state(c) for c in cuts]
    urls = [media_url(c["image"]) if c["image"] else None for c in cuts]
    done = sum(s == "completed" for s in states)
    if any(not j.is_terminal for j in jobs_of_session):
        status = "generating"
    else:
        status = "completed" if done else "failed"
    return {
        "task_id": str(job.public_id),
        "session_id": str(session.public_id),
        "status": status,
        "completed_cuts": done,
        "total_cuts": len(cuts),
        "preview_urls": urls,
        "message": deadline_message(session, jobs_of_session),
        "wait_message": rows_wait_message(jobs_of_session, cuts),
        "cuts": [
            {
                "id": c["number"],
                "number": c["number"],
                "category": c["category"],
                "label": c["label_ko"],
                "state": s,
                "url": url,
                "selected": c["selected"],
                "error": c["error"],
                "similarity": c["similarity"],
                "quality_ok": c["quality_ok"],
                "quality_reasons": c["quality_reasons"],
                "identity": c["identity"],  # against the photo (issue 16)
            }
            for c, s, url in zip(cuts, states, urls, strict=True)
        ],
    }


# What the status API and the curation grid show of each cut, read once per poll as plain
# values with the call's few fields (issue 19: model instances of 24 cuts and 24 calls, with
# their date conversions, were most of a poll's time).
CUT_COLUMNS = (
    "number", "label_ko", "category", "image", "selected", "error", "quality_ok",
    "quality_reasons", "similarity", "identity", "call_id", "call__job_id", "call__state",
    "call__queue_position", "call__finished_at",
)  # fmt: skip


def cut_rows(session: CreationSession) -> list[dict]:
    return list(session.cuts.order_by("number").values(*CUT_COLUMNS))


def row_state(row: dict) -> str:
    """What the grid and generation-status say of a cut, from a row of cut_rows."""
    if row["image"]:
        return "completed"
    if row["error"]:  # the call failed, or the safety filter took the picture
        return "failed"
    if row["call_id"] is None:
        return "pending"
    return CUT_STATES.get(row["call__state"], "pending")


def rows_wait_message(jobs_of_session: list[Job], rows: list[dict]) -> str:
    """The first of the session's jobs that waits, from the calls its cuts hold (no query per
    job and poll); a job none of the cuts holds reads its own calls."""
    for job in jobs_of_session:
        calls = [
            SimpleNamespace(state=r["call__state"], queue_position=r["call__queue_position"])
            for r in rows
            if r["call_id"] is not None and r["call__job_id"] == job.pk
        ]
        if message := wait_message(job, calls or None):
            return message
    return ""


def session_jobs(session: CreationSession) -> list[Job]:
    """The session's cut jobs, newest first. Read on every poll of the grid and of
    generation-status: SQL written once, for the two databases we run on, instead of the
    JSON-key filter's compilation each time (issue 19)."""
    where = _session_jobs_where(connection.vendor)
    if where is None:
        return list(Job.objects.filter(kind=CUTS.name, subject__session=session.pk))
    newest_first = f"ORDER BY {column(Job, 'created_at')} DESC"
    return instances(Job, where, [CUTS.name, session.pk], newest_first)


@functools.cache
def _session_jobs_where(vendor: str) -> str | None:
    subject = column(Job, "subject")
    # subject is {"session": <pk>, ...}: JSON_EXTRACT gives the number, ->> its text.
    session_is = {
        "sqlite": f"JSON_EXTRACT({subject}, '$.session') = %s",
        "postgresql": f"({subject} ->> 'session') = (%s)::text",
    }.get(vendor)
    return session_is and f"{column(Job, 'kind')} = %s AND {session_is}"


def watch_session(session: CreationSession) -> list[Job]:
    """The owner is looking at the session (status API, page poll): ask for a fresh pass of
    its jobs (debounced) and for any quality check lost with its worker, rather than wait
    for the minute schedules. Returns the session's cut jobs, as they are after the pass
    when it ran at once (the queue inline: `sync`)."""
    jobs_of_session = session_jobs(session)
    claimed = [jobs.request_refresh(each) for each in jobs_of_session]
    # The lost-check search is a query: once per RECHECK_WATCH_SECONDS per session is enough
    # for a poll every 2 s (issue 19); the minute schedule covers sessions nobody watches.
    if cache.add(f"watch-recheck:{session.pk}", 1, RECHECK_WATCH_SECONDS):
        checks.recheck_stale_cuts(session=session)
    if any(claimed) and settings.Q_CLUSTER.get("sync", False):
        jobs_of_session = session_jobs(session)
    return jobs_of_session


RECHECK_WATCH_SECONDS = 10


def deadline_message(session: CreationSession, jobs_of_session: list[Job] | None = None) -> str:
    """SPEC §11.8: the message shown when a cut set ran past its 10-minute deadline."""
    if jobs_of_session is None:
        jobs_of_session = session_jobs(session)
    if any(j.error_code == "deadline" or _has_deadline_calls(j) for j in jobs_of_session):
        return _("생성이 지연되고 있습니다. 잠시 후 다시 시도해주세요.")
    return ""


def _has_deadline_calls(job: Job) -> bool:
    return job.is_terminal and job.calls.filter(error_code="deadline").exists()
