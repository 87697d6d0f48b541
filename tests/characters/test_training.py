"""Steps 5–8: packaging, the cost gate, LoRA training in the background, test images.

Everything runs on the fal backend against the HTTP fake (webtoon.testing.fal_fake) unless a
test says otherwise. Sessions are built directly (cuts with stored images) instead of running
the 24-cut generation, so each test stays fast.
"""

import base64
import hashlib
import io
import json
import os
import threading
import time
import zipfile
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections
from django.utils import timezone
from PIL import Image

from characters import training
from characters.enums import CharacterStatus, SessionState
from characters.models import Character, CreationSession, Cut, Photo
from characters.prompts import base_cuts, style_prompt
from webtoon.imaging import webhooks
from webtoon.jobs import services as jobs
from webtoon.jobs.models import CallAttempt, CallState, Job, JobState
from webtoon.notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_sessions(settings):
    # These tests package sessions of a few cuts; the 15-cut rule (issue 15) is tested with
    # its real value in tests/test_trust.py.
    settings.MIN_SELECTED_CUTS = 1

TRAINER = "fal-ai/flux-lora-portrait-trainer"
LORA = "fal-ai/flux-lora"
CDN_FILES = "https://v3.fal.media/files/"


# --- building blocks ----------------------------------------------------------------------------
def jpeg(size=(1024, 1024), color=(180, 140, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_session(owner, *, cuts=4, style="original", unselected=(), without_image=()):
    """A curated session: `cuts` cuts with stored 1024² images, all selected unless listed."""
    photo = Photo(
        owner=owner, width=768, height=768, source_format="JPEG", consent_at=timezone.now()
    )
    photo.image.save(f"u/{owner.pk}/photos/p.jpg", ContentFile(jpeg((768, 768))), save=False)
    photo.save()
    session = CreationSession.objects.create(
        owner=owner, photo=photo, style_id=style, state=SessionState.CURATING
    )
    templates = base_cuts()
    for number in range(1, cuts + 1):
        template = templates[number - 1]
        cut = Cut.objects.create(
            session=session,
            number=number,
            template_id=template.id,
            category=template.category,
            pose_prompt=template.prompt,
            label_ko=template.label_ko,
            selected=number not in unselected,
        )
        if number not in without_image:
            color = (20 * number % 256, 90, 160)
            cut.image.save(f"u/{owner.pk}/cuts/{number}.jpg", ContentFile(jpeg(color=color)))
    return session


def post(client, path, body):
    return client.post(f"/api/character/{path}", body, content_type="application/json")


def prepare(client, session, name="박사장", trigger_word=None):
    body = {"session_id": str(session.public_id), "character_name": name}
    if trigger_word is not None:
        body["trigger_word"] = trigger_word
    return post(client, "prepare-training-data", body)


def prepared(owner, name="박사장", **session_options) -> Character:
    session = make_session(owner, **session_options)
    return training.prepare_training_data(
        owner=owner, session_id=session.public_id, character_name=name
    )


def start(client, character, confirm=True):
    body = {"character_id": str(character.public_id), "confirm_cost": confirm}
    return post(client, "start-training", body)


def status(client, job):
    return client.get(f"/api/character/training-status/{job.public_id}")


def trainer_call(job):
    return job.calls.get()


def drive(job, *, passes=30) -> Job:
    """Advance the job pass by pass (as the reconciler would) until it finishes."""
    for _ in range(passes):
        job = jobs.advance_job(job.pk)
        if job.is_terminal:
            return job
    raise AssertionError(f"job still {job.state} after {passes} passes")


@pytest.fixture
def character(user, fal):
    return prepared(user)


# --- step 5: prepare-training-data --------------------------------------------------------------
def test_prepare_training_data_reports_the_hosted_zip(alice_client, user, fal):
    session = make_session(user, cuts=5, unselected=(2,), without_image=(5,))
    response = prepare(alice_client, session)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "character_id",
        "training_data_url",
        "trigger_word",
        "image_count",
        "total_size_mb",
        "captions_included",
        "cost",
    }
    assert body["training_data_url"].startswith(CDN_FILES)
    assert body["trigger_word"] == "sks_parksajang"
    assert body["image_count"] == 3  # cuts 1, 3, 4: selected and with an image
    assert body["total_size_mb"] > 0
    assert body["captions_included"] is True
    assert body["cost"]["training"] == {"usd": 2.0, "krw": 2800}  # the §4 notice comes next
    # The URL fal will fetch holds exactly the ZIP we keep.
    character = Character.objects.get(public_id=body["character_id"])
    assert body["total_size_mb"] == round(character.training_data_size / 2**20, 2)
    hosted = fal.files[body["training_data_url"].removeprefix(CDN_FILES)][0]
    with character.training_data.open("rb") as fh:
        assert fh.read() == hosted
    assert character.status == CharacterStatus.DRAFT
    session.refresh_from_db()
    assert session.state == SessionState.PACKAGED


def test_prepare_training_data_zip_has_numbered_images_with_captions(alice_client, user, fal):
    session = make_session(user, cuts=3, style="realistic_sketch")
    body = prepare(alice_client, session).json()
    character = Character.objects.get(public_id=body["character_id"])
    with character.training_data.open("rb") as fh, zipfile.ZipFile(fh) as archive:
        assert sorted(archive.namelist()) == [
            "01.jpg", "01.txt", "02.jpg", "02.txt", "03.jpg", "03.txt"
        ]  # fmt: skip
        captions = [archive.read(f"0{n}.txt").decode() for n in (1, 2, 3)]
        with Image.open(io.BytesIO(archive.read("02.jpg"))) as im:
            assert (im.format, im.size) == ("JPEG", (1024, 1024))
    style = style_prompt("realistic_sketch", "")
    poses = [c.pose_prompt for c in session.cuts.order_by("number")]
    assert captions == [f"sks_parksajang, {style}, {pose}" for pose in poses]
    assert captions[0].startswith("sks_parksajang, realistic face with hand-drawn ink sketch body")


def test_prepare_training_data_same_name_twice_gets_a_numbered_trigger_word(
    alice_client, user, fal
):
    first = prepare(alice_client, make_session(user)).json()
    second = prepare(alice_client, make_session(user)).json()
    assert first["trigger_word"] == "sks_parksajang"
    assert second["trigger_word"] == "sks_parksajang2"


def test_prepare_training_data_custom_trigger_word_is_used(alice_client, user, fal):
    body = prepare(alice_client, make_session(user), trigger_word="Sks_Boss").json()
    assert body["trigger_word"] == "sks_boss"
    character = Character.objects.get(public_id=body["character_id"])
    with character.training_data.open("rb") as fh, zipfile.ZipFile(fh) as archive:
        assert archive.read("01.txt").decode().startswith("sks_boss, ")


@pytest.mark.parametrize(
    "change, expected",
    [({"trigger_word": "sks_park"}, "sks_park"), ({"name": "박사"}, "sks_parksa")],
)
def test_prepare_training_data_again_with_a_new_name_or_word_uses_it(
    alice_client, user, fal, change, expected
):
    session = make_session(user)
    first = prepare(alice_client, session).json()
    again = prepare(alice_client, session, **change).json()
    assert again["character_id"] == first["character_id"]  # the same draft, re-packaged
    assert again["trigger_word"] == expected
    character = Character.objects.get(public_id=again["character_id"])
    with character.training_data.open("rb") as fh, zipfile.ZipFile(fh) as archive:
        assert archive.read("01.txt").decode().startswith(f"{expected}, ")


def test_prepare_training_data_invalid_trigger_word_is_422(alice_client, user, fal):
    response = prepare(alice_client, make_session(user), trigger_word="Bad Word!")
    assert response.status_code == 422
    assert "트리거 워드" in response.json()["detail"]
    assert not Character.objects.exists()
    assert fal.uploads == []


def test_prepare_training_data_without_selected_cuts_is_422_and_creates_nothing(
    alice_client, user, fal
):
    session = make_session(user, cuts=3, unselected=(1, 2, 3))
    response = prepare(alice_client, session)
    assert response.status_code == 422
    assert "컷을 한 장 이상 선택해 주세요" in response.json()["detail"]
    assert not Character.objects.exists()
    assert fal.uploads == []


def test_prepare_training_data_of_another_users_session_is_404(alice_client, other_user, fal):
    response = prepare(alice_client, make_session(other_user))
    assert response.status_code == 404
    assert not Character.objects.exists()


def test_prepare_training_data_upload_failure_leaves_nothing_behind(alice_client, user, fal):
    session = make_session(user)
    folder = f"u/{user.pk}/training"
    before = set(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else set()
    fal.fail("upload", status=500, times=2)  # the CDN upload and fal-client's fallback
    response = prepare(alice_client, session)
    assert response.status_code == 503  # fal is down: try again later
    assert "잠시 후 다시 시도해주세요" in response.json()["detail"]
    assert not Character.objects.exists()
    after = set(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else set()
    assert after == before  # the ZIP written to our storage was removed again


# --- §11.2 trigger words stay unique under concurrency (PostgreSQL) ------------------------------
needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises all writers",
)


def at_once(fn, items) -> list:
    """fn(item) for every item, each in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(items))
    results, errors = [], []

    def worker(item):
        try:
            barrier.wait(timeout=10)
            results.append(fn(item))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_prepare_training_data_concurrent_same_name_gets_distinct_trigger_words(user, offline):
    sessions = [make_session(user, cuts=1) for _ in range(6)]
    characters = at_once(
        lambda session: training.prepare_training_data(
            owner=user, session_id=session.public_id, character_name="박사장"
        ),
        sessions,
    )
    expected = {"sks_parksajang", *(f"sks_parksajang{n}" for n in range(2, 7))}
    assert sorted(c.trigger_word for c in characters) == sorted(expected)
    assert set(Character.objects.values_list("trigger_word", flat=True)) == expected


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_start_training_concurrent_starts_respect_the_per_user_limit(user, offline, settings):
    settings.MAX_CONCURRENT_TRAINING = 2
    characters = [prepared(user, name=name, cuts=1) for name in ("Ann", "Ben", "Cid", "Dan")]
    at_once(
        lambda c: training.start_training(owner=user, character_id=c.public_id, confirm_cost=True),
        characters,
    )
    states = sorted(Job.objects.filter(kind="training").values_list("state", flat=True))
    assert states.count(JobState.WAITING) == 2, states


# --- step 6: the cost gate and the submission ----------------------------------------------------
def test_start_training_without_cost_confirmation_is_422_and_starts_nothing(
    alice_client, character, fal
):
    response = start(alice_client, character, confirm=False)
    assert response.status_code == 422
    assert "비용 안내를 확인한 뒤" in response.json()["detail"]
    assert not Job.objects.exists()
    character.refresh_from_db()
    assert character.status == CharacterStatus.DRAFT
    assert fal.submitted() == []


def test_start_training_submits_the_trainer_once_and_returns_at_once(
    alice_client, character, fal, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = start(alice_client, character)
    assert response.status_code == 202
    body = response.json()
    assert body["queued"] is False
    assert body["estimated_time_seconds"] == 1200
    sent = fal.submitted(TRAINER)
    assert len(sent) == 1
    assert sent[0].arguments == {
        "images_data_url": character.training_data_url,
        "trigger_phrase": "sks_parksajang",
        "steps": 1500,
        "learning_rate": 1e-4,
        "create_masks": True,
    }
    # One pass of the runner: submitted, not waited on (the reconciler comes back later).
    assert fal.count("status") == 0
    job = Job.objects.get(public_id=body["task_id"])
    assert job.state == JobState.RUNNING
    call = trainer_call(job)
    assert (call.state, call.request_id) == (CallState.SUBMITTED, sent[0].request_id)
    character.refresh_from_db()
    assert character.status == CharacterStatus.TRAINING
    assert character.training_started_at is not None


def test_start_training_twice_is_a_conflict(alice_client, character, fal):
    assert start(alice_client, character).status_code == 202
    again = start(alice_client, character)
    assert again.status_code == 409
    assert Job.objects.count() == 1


# --- progress -----------------------------------------------------------------------------------
def read_every(client, job, traveller, *, times, seconds=11):
    """Status reads spaced out in time: each one may trigger one pass of the job."""
    reads = []
    for _ in range(times):
        traveller.shift(timedelta(seconds=seconds))
        reads.append(status(client, job).json())
    return reads


def log(message: str) -> dict:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": "2026-01-01"}


def test_training_status_progress_follows_step_logs_and_never_goes_back(
    alice_client, character, fal
):
    fal.running_polls = 4  # steps 300, 600, 900, 1200 of 1500, then done
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        reads = read_every(alice_client, job, traveller, times=4)
        # Two answers that must not move the counter back: another "n/m" in a later log
        # line, and fal re-running the request on a fresh runner (its log starts over).
        checkpoint = [log("Training: step 600/1500 loss=0.08"), log("Saving checkpoint 1/3")]
        restarted = [log("Preprocessing images"), log("Training: step 150/1500 loss=0.2")]
        for logs in (checkpoint, restarted):
            body = {"status": "IN_PROGRESS", "logs": logs}
            fal.fail("status", endpoint=TRAINER, status=200, body=body)
        reads += read_every(alice_client, job, traveller, times=5)
    assert [r["status"] for r in reads] == ["preparing"] * 2 + ["training"] * 6 + ["completed"]
    assert [r["current_step"] for r in reads] == [0, 0, 300, 600, 600, 600, 900, 1200, 1500]
    assert [r["progress_percent"] for r in reads] == [0, 0, 20, 40, 40, 40, 60, 80, 100]
    assert all(r["total_steps"] == 1500 for r in reads)
    remaining = [r["estimated_remaining_seconds"] for r in reads]
    assert remaining == [1200, 1200, 960, 720, 720, 720, 480, 240, 0]


def test_training_status_without_step_logs_estimates_from_elapsed_time(
    alice_client, character, fal
):
    fal.training_logs = "none"
    fal.running_polls = 1000
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        first = read_every(alice_client, job, traveller, times=3)  # submit, queued, running
        later = read_every(alice_client, job, traveller, times=2, seconds=300)
    assert [r["status"] for r in first] == ["preparing", "preparing", "training"]
    reads = [first[-1], *later]
    assert all(r["status"] == "training" for r in reads)
    assert [r["progress_percent"] for r in reads] == [0, 25, 50]
    assert [r["current_step"] for r in reads] == [0, 375, 750]
    remaining = [r["estimated_remaining_seconds"] for r in reads]
    assert remaining == [1200, 900, 600]
    elapsed = [r["elapsed_seconds"] for r in reads]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0]


# --- steps 6–8: success end to end --------------------------------------------------------------
def test_training_success_backs_up_the_lora_makes_three_samples_and_notifies(
    alice_client, user, character, fal, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.SCALE_SWEEP_SCALES = []  # the sweep: tests/characters/test_sweep.py
    with django_capture_on_commit_callbacks(execute=True):
        task_id = start(alice_client, character).json()["task_id"]
    with django_capture_on_commit_callbacks(execute=True):
        job = drive(Job.objects.get(public_id=task_id))
    assert job.state == JobState.SUCCEEDED
    body = status(alice_client, job).json()
    assert body["status"] == "completed" and body["progress_percent"] == 100

    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE
    request_id = fal.submitted(TRAINER)[0].request_id
    assert character.lora_url == f"{CDN_FILES}{request_id}.safetensors"
    assert character.lora_file_backed_up is True
    with character.lora_file.open("rb") as fh:
        assert fh.read() == fal.files[f"{request_id}.safetensors"][0]
    assert character.trained_at is not None
    page = alice_client.get(character.get_absolute_url())
    assert page.status_code == 200
    assert training.BACKUP_FAILED not in page.content.decode()  # shown only when it failed
    assert CreationSession.objects.get(pk=character.session_id).state == SessionState.DONE

    # Step 7: three test images on flux-lora with the new LoRA at 0.8.
    sent = fal.submitted(LORA)
    assert sorted(r.arguments["prompt"] for r in sent) == sorted(
        [
            "sks_parksajang, front view, confident smile, white background",
            "sks_parksajang, sitting at desk, explaining something, office background",
            "sks_parksajang, full body, standing, waving hand, simple background",
        ]
    )
    for request in sent:
        assert request.arguments["loras"] == [{"path": character.lora_url, "scale": 0.8}]
        assert request.arguments["image_size"] == "square"
        assert request.arguments["num_inference_steps"] == 28
    samples = list(character.samples.order_by("number"))
    assert [s.number for s in samples] == [1, 2, 3]
    for sample in samples:
        assert sample.image
        with sample.image.open("rb") as fh, Image.open(fh) as im:
            assert im.size == (512, 512)  # fal's "square"
    assert "front view" in samples[0].prompt and "office" in samples[1].prompt

    # Step 8: the owner hears about it, in the app and by e-mail.
    note = Notification.objects.get(owner=user, kind="training_completed")
    assert "캐릭터 학습 완료" in note.message and "박사장" in note.message
    assert note.link == character.get_absolute_url()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["alice@example.com"]
    assert "캐릭터 학습 완료" in mailoutbox[0].subject


# --- failures -----------------------------------------------------------------------------------
def test_training_fal_server_error_on_submit_is_retried_and_completes(user, character, fal):
    fal.fail("submit", endpoint=TRAINER, status=500)
    job = training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    job = drive(job)
    assert job.state == JobState.SUCCEEDED
    call = trainer_call(job)
    assert call.attempts == 2
    outcomes = CallAttempt.objects.filter(call=call).order_by("number")
    assert [a.outcome for a in outcomes] == ["remote_unavailable", "succeeded"]
    assert fal.count("submit") == 2 and len(fal.submitted(TRAINER)) == 1
    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE


def fail_three_times(client, character, fal) -> Job:
    fal.complete_with_error(TRAINER, "CUDA out of memory")
    job = Job.objects.get(public_id=start(client, character).json()["task_id"])
    return drive(job, passes=40)


def test_training_failing_three_times_fails_with_a_not_charged_notice(
    alice_client, user, character, fal
):
    job = fail_three_times(alice_client, character, fal)
    assert job.state == JobState.FAILED
    assert len(fal.submitted(TRAINER)) == 3  # the first try and 2 automatic retries
    assert trainer_call(job).attempts == 3
    # The cause stays on the job for the admin.
    assert job.error_code == "remote_unavailable"
    assert "CUDA out of memory" in job.error_message
    character.refresh_from_db()
    assert character.status == CharacterStatus.FAILED
    body = status(alice_client, job).json()
    assert body["status"] == "failed"
    assert "학습에 실패했습니다. 다른 이미지로 다시 시도해주세요." in body["message"]
    assert "비용이 청구되지 않았습니다" in body["message"]
    note = Notification.objects.get(owner=user, kind="training_failed")
    assert "비용이 청구되지 않았습니다" in note.message
    assert fal.submitted(LORA) == []


def test_retry_training_reuses_the_packaged_zip_and_succeeds(alice_client, user, character, fal):
    fal.running_polls = 4  # every run logs steps 300, 600, 900, 1200 of 1500
    fail_three_times(alice_client, character, fal)
    character.refresh_from_db()
    url, stored = character.training_data_url, character.training_data.name
    uploads = list(fal.uploads)
    fal.completion_errors.clear()

    job = training.retry_training(owner=user, character_id=character.public_id)
    for _ in range(3):
        jobs.advance_job(job.pk)  # submitted, queued, running: a fresh run from step 0
    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        during = status(alice_client, job).json()
    assert during["status"] == "training"
    assert (during["current_step"], during["progress_percent"]) == (300, 20)
    job = drive(job)

    assert job.state == JobState.SUCCEEDED
    assert fal.uploads == uploads  # no new ZIP packaged or uploaded
    assert fal.submitted(TRAINER)[-1].arguments["images_data_url"] == url
    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE
    assert character.training_data.name == stored
    assert character.failure_message == ""
    assert status(alice_client, job).json()["status"] == "completed"


def test_training_past_sixty_minutes_fails_with_a_timeout_notice_and_is_cancelled(
    alice_client, character, fal
):
    fal.running_polls = 10_000
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    started = timezone.now()
    for _ in range(3):
        jobs.advance_job(job.pk)  # submitted, queued, running
    with time_machine.travel(started + timedelta(minutes=59)):
        assert status(alice_client, job).json()["status"] == "training"
        assert fal.count("cancel") == 0
    with time_machine.travel(started + timedelta(minutes=60, seconds=5)):
        body = status(alice_client, job).json()
    assert body["status"] == "failed"
    assert training.TIMEOUT_MESSAGE in body["message"]
    # It was running at fal when cancelled: fal may have billed it, so no "not charged".
    assert "비용이 청구되지 않았습니다" not in body["message"]
    assert "청구되었을 수 있습니다" in body["message"]
    assert fal.count("cancel") == 1
    assert fal.requests[trainer_call(job).request_id].cancelled
    job.refresh_from_db()
    assert job.error_code == "deadline"
    character.refresh_from_db()
    assert character.status == CharacterStatus.FAILED


# --- §11.4: at most two trainings per user ------------------------------------------------------
def test_third_training_waits_for_a_free_slot_and_starts_when_one_finishes(
    alice_client, user, fal, settings, django_capture_on_commit_callbacks
):
    settings.MAX_CONCURRENT_TRAINING = 2
    characters = [prepared(user, name=name, cuts=1) for name in ("Ann", "Ben", "Cid")]
    with django_capture_on_commit_callbacks(execute=True):
        bodies = [start(alice_client, c).json() for c in characters]
    assert [b["queued"] for b in bodies] == [False, False, True]
    first, _, third = (Job.objects.get(public_id=b["task_id"]) for b in bodies)
    assert third.state == JobState.WAITING
    assert [r.arguments["trigger_phrase"] for r in fal.submitted(TRAINER)] == [
        "sks_ann",
        "sks_ben",
    ]
    waiting = status(alice_client, third).json()
    assert waiting["queued"] is True
    assert waiting["message"] == (
        "동시에 2개까지 학습할 수 있습니다. 앞선 학습이 끝나면 자동으로 시작합니다."
    )
    assert Character.objects.get(pk=characters[2].pk).status == CharacterStatus.QUEUED
    assert len(fal.submitted(TRAINER)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        drive(first)

    third.refresh_from_db()
    assert third.state == JobState.RUNNING
    assert [r.arguments["trigger_phrase"] for r in fal.submitted(TRAINER)][2] == "sks_cid"
    assert Character.objects.get(pk=characters[2].pk).status == CharacterStatus.TRAINING
    assert status(alice_client, third).json()["queued"] is False


# --- progress while the page is open -------------------------------------------------------------
def test_a_page_polling_every_5_s_gets_fals_newest_step_on_every_poll(
    alice_client, character, fal
):
    """Issue 15: the bar updates at least every 10 s while the page is open. The training
    panel and the card poll every 5 s; each poll asks for a pass (the refresh debounce is
    under the poll), so each one brings fal's newest step, not every other or third one.
    Two tabs reading within a few seconds still cost fal one status request."""
    fal.training_seconds = 600  # still training at fal for the whole test
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    jobs.advance_job(job.pk)  # submitted; the pass looked at the job just now
    fetched = []
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(4):
            traveller.shift(timedelta(seconds=5))
            before = fal.count("status")
            assert status(alice_client, job).json()["status"] in ("preparing", "training")
            fetched.append(fal.count("status") - before)
        assert fetched == [1, 1, 1, 1]
        traveller.shift(timedelta(seconds=2))  # a second tab, 2 s later
        before = fal.count("status")
        status(alice_client, job)
        assert fal.count("status") == before


# --- restart ------------------------------------------------------------------------------------
def test_training_resumes_after_a_dead_runner_without_a_second_submission(
    alice_client, character, fal, settings
):
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    assert jobs.claim(job.pk)
    jobs.advance_job(job.pk)  # the runner submits, then dies holding the lease
    assert len(fal.submitted(TRAINER)) == 1
    now = timezone.now()
    with time_machine.travel(now + timedelta(seconds=30), tick=False) as traveller:
        assert jobs.reconcile() == 0  # the lease still holds: nobody touches the job
        assert fal.count("status") == 0
        traveller.move_to(now + timedelta(seconds=settings.JOB_LEASE_SECONDS + 5))
        assert jobs.reconcile() == 1  # a restarted worker picks it up from the request id
        assert fal.count("status") == 1
        for _ in range(10):
            traveller.shift(timedelta(seconds=11))
            jobs.reconcile()
            job.refresh_from_db()
            if job.is_terminal:
                break
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submitted(TRAINER)) == 1
    assert trainer_call(job).attempts == 1
    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE


# --- §11.3: the LoRA backup ---------------------------------------------------------------------
def test_lora_from_a_foreign_host_is_not_downloaded_but_the_character_is_active(
    alice_client, user, character, fal
):
    foreign = "https://evil.example.com/x.safetensors"
    fal.fail(
        "result",
        endpoint=TRAINER,
        status=200,
        body={"diffusers_lora_file": {"url": foreign}, "config_file": {"url": foreign}},
    )
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    assert job.state == JobState.SUCCEEDED
    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE
    assert character.lora_url == foreign
    assert character.lora_file_backed_up is False
    assert not character.lora_file
    assert trainer_call(job).error_code == "download_refused"  # why, for the admin
    assert fal.count("file") == 0
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert training.BACKUP_FAILED in page  # the user is told to download it by hand


def test_lora_over_the_size_cap_is_not_kept_but_the_character_is_active(
    user, character, fal, settings
):
    settings.MAX_LORA_BYTES = 16
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    assert job.state == JobState.SUCCEEDED
    character.refresh_from_db()
    assert character.status == CharacterStatus.ACTIVE
    assert character.lora_url.startswith(CDN_FILES)
    assert character.lora_file_backed_up is False
    assert not character.lora_file
    assert trainer_call(job).error_code == "download_refused"


# --- fal's webhook ------------------------------------------------------------------------------
def jwk(private_key) -> dict:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }


@pytest.fixture
def fal_key(fal, settings):
    """fal's signing key, published at the JWKS URL (served by the fake's router)."""
    key = Ed25519PrivateKey.generate()
    cache.delete(webhooks.JWKS_CACHE_KEY)
    fal.router.get(settings.FAL_WEBHOOK_JWKS_URLS[0]).respond(200, json={"keys": [jwk(key)]})
    yield key
    cache.delete(webhooks.JWKS_CACHE_KEY)


def signature_headers(key, request_id: str, raw: bytes) -> dict[str, str]:
    """fal's webhook headers: Ed25519 over request id, user id, timestamp, sha256(body)."""
    timestamp = str(int(time.time()))
    digest = hashlib.sha256(raw).hexdigest()
    message = "\n".join([request_id, "user-1", timestamp, digest]).encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


def send_webhook(client, request_id, *, key=None):
    raw = json.dumps(
        {"request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": {}}
    ).encode()
    headers = signature_headers(key, request_id, raw) if key is not None else {}
    return client.post("/api/fal/webhook", raw, content_type="application/json", headers=headers)


def test_trainer_is_asked_to_call_the_webhook_when_the_site_is_public(
    user, character, fal, settings
):
    settings.WEBTOON_PUBLIC_URL = "https://webtoon.example.com/"
    job = training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    jobs.advance_job(job.pk)
    submit_url = next(url for op, url in fal.calls if op == "submit")
    # The URL names our call (signed), so a request whose submit answer is lost is adopted.
    assert "?fal_webhook=https%3A%2F%2Fwebtoon.example.com%2Fapi%2Ffal%2Fwebhook%3Fcall%3D" in (
        submit_url
    )


@pytest.fixture
def submitted_job(user, character, fal):
    job = training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    return jobs.advance_job(job.pk)


@pytest.mark.parametrize("signer", ["none", "another key"])
def test_fal_webhook_without_a_valid_signature_is_400_and_runs_nothing(
    client, submitted_job, fal, fal_key, signer
):
    request_id = trainer_call(submitted_job).request_id
    key = None if signer == "none" else Ed25519PrivateKey.generate()
    response = send_webhook(client, request_id, key=key)
    assert response.status_code == 400
    assert fal.count("status") == 0
    job = Job.objects.get(pk=submitted_job.pk)
    assert job.last_checked_at == submitted_job.last_checked_at


def test_fal_webhook_with_a_tampered_body_is_400(client, submitted_job, fal, fal_key):
    request_id = trainer_call(submitted_job).request_id
    signed = json.dumps({"request_id": request_id, "status": "OK", "payload": {}}).encode()
    headers = signature_headers(fal_key, request_id, signed)
    tampered = signed.replace(b'"OK"', b'"ERROR"')
    response = client.post(
        "/api/fal/webhook", tampered, content_type="application/json", headers=headers
    )
    assert response.status_code == 400
    assert fal.count("status") == 0


def test_fal_webhook_signed_by_fal_makes_the_job_look_now(
    alice_client, client, submitted_job, fal, fal_key
):
    fal.queue_polls = 0  # fal says it is running by the time it calls back
    request_id = trainer_call(submitted_job).request_id
    response = send_webhook(client, request_id, key=fal_key)
    assert response.status_code == 200
    assert fal.count("status") == 1  # one pass, right away, not at the next reconcile
    assert trainer_call(submitted_job).state == CallState.RUNNING
    assert status(alice_client, submitted_job).json()["status"] == "training"


def test_fal_webhook_for_an_unknown_request_is_acknowledged_and_ignored(
    client, submitted_job, fal, fal_key
):
    response = send_webhook(client, "req-unknown", key=fal_key)
    assert response.status_code == 200
    assert fal.count("status") == 0


# --- owner scoping ------------------------------------------------------------------------------
def test_another_users_character_and_task_are_404(alice_client, other_user, fal):
    theirs = prepared(other_user)
    assert start(alice_client, theirs).status_code == 404
    assert not Job.objects.exists()
    job = training.start_training(
        owner=other_user, character_id=theirs.public_id, confirm_cost=True
    )
    response = status(alice_client, job)
    assert response.status_code == 404
    assert fal.submitted() == [] and fal.count("status") == 0  # alice's read ran nothing
    theirs.refresh_from_db()
    assert theirs.status == CharacterStatus.TRAINING


def test_training_whose_submit_answer_was_lost_is_not_resent_nor_called_free(
    alice_client, user, character, fal
):
    from webtoon.testing.fal_fake import Chaos

    # fal queues the training, and its answer never comes back.
    fal.chaos = Chaos(timeout_rate=1.0, ops=frozenset({"submit"}))
    job = drive(Job.objects.get(public_id=start(alice_client, character).json()["task_id"]))
    assert job.state == JobState.FAILED and job.error_code == "submit_unknown"
    assert len(fal.submitted(TRAINER)) == 1  # not paid twice by an automatic retry
    body = status(alice_client, job).json()
    assert body["status"] == "failed"
    assert "이중 과금을 막기 위해" in body["message"]
    assert "비용이 청구되지 않았습니다" not in body["message"]  # it may well have been
    note = Notification.objects.get(owner=user, kind="training_failed")
    assert "비용이 청구되지 않았습니다" not in note.message
