"""Steps 2–3: style selection and the 24 cuts on the fal fake (Kontext and styled paths)
and on the offline backend."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from characters.models import Cut, Photo
from webtoon.jobs import services as jobs
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data"


def make_photo(owner) -> Photo:
    buf = io.BytesIO()
    Image.new("RGB", (768, 768), (180, 140, 120)).save(buf, "JPEG")
    photo = Photo(
        owner=owner, width=768, height=768, source_format="JPEG", consent_at=timezone.now()
    )
    photo.image.save(f"u/{owner.pk}/photos/test.jpg", ContentFile(buf.getvalue()), save=False)
    photo.save()
    return photo


def select(client, photo, **extra):
    body = {"photo_id": str(photo.public_id), **extra}
    return client.post("/api/character/select-style", body, content_type="application/json")


def generate(client, session_id, capture):
    with capture(execute=True):
        response = client.post(
            "/api/character/generate-24-cuts",
            {"session_id": session_id},
            content_type="application/json",
        )
    return response


def start_without_running(client, photo) -> Job:
    """Start a generation whose runner is not executed (no on_commit), for step-by-step tests."""
    session_id = select(client, photo).json()["session_id"]
    response = client.post(
        "/api/character/generate-24-cuts",
        {"session_id": session_id},
        content_type="application/json",
    )
    return Job.objects.get(public_id=response.json()["task_id"])


@pytest.fixture
def photo(user):
    return make_photo(user)


def test_select_style_defaults_to_original(alice_client, photo):
    response = select(alice_client, photo)
    assert response.status_code == 201
    body = response.json()
    assert body["selected_style"] == "original"
    assert body["estimated_cost"] == pytest.approx(0.96)  # 24 Kontext pro images at $0.04
    assert body["estimated_time_seconds"] == 180


@pytest.mark.parametrize(
    "extra, status",
    [
        ({"style_id": "watercolor"}, 422),
        ({"style_id": "custom", "custom_prompt": "x" * 201}, 422),
        ({"style_id": "custom", "custom_prompt": "  "}, 422),
        ({"style_id": "custom", "custom_prompt": "지브리풍 수채화" * 20}, 201),  # 160 chars
    ],
)
def test_select_style_validates_the_style(alice_client, photo, extra, status):
    response = select(alice_client, photo, **extra)
    assert response.status_code == status
    if status == 422:
        assert isinstance(response.json()["detail"], str)


def test_someone_elses_photo_is_404(alice_client, other_user):
    response = select(alice_client, make_photo(other_user))
    assert response.status_code == 404


def test_24_cuts_on_kontext_are_submitted_together_with_the_photo(
    alice_client, photo, fal, django_capture_on_commit_callbacks
):
    session_id = select(alice_client, photo).json()["session_id"]
    response = generate(alice_client, session_id, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert response.json()["total_cuts"] == 24

    sent = fal.submitted("fal-ai/flux-pro/kontext")
    assert len(sent) == 24
    photo_url = sent[0].arguments["image_url"]
    assert photo_url.startswith("https://v3.fal.media/files/")
    assert len(fal.uploads) == 1  # the photo is uploaded once, not per cut
    first = next(r for r in sent if "neutral smile" in r.arguments["prompt"])
    assert first.arguments == {
        "prompt": "same person, same style as the input image, neutral smile, front view, "
        "looking at camera, clean background",
        "image_url": photo_url,
        "aspect_ratio": "1:1",
        "num_images": 1,
        "output_format": "jpeg",
    }

    status = alice_client.get(f"/api/character/generation-status/{task_id}").json()
    assert status["status"] == "completed"
    assert (status["completed_cuts"], status["total_cuts"]) == (24, 24)
    assert all(url and url.startswith("/media/u/") for url in status["preview_urls"])
    image = alice_client.get(status["preview_urls"][0])
    with Image.open(io.BytesIO(b"".join(image.streaming_content))) as im:
        assert im.size == (1024, 1024)
    assert [c["label"] for c in status["cuts"][:2]] == ["정면 미소", "활짝 웃음"]


def test_styled_path_sends_style_and_pose_with_the_photo_as_reference(
    alice_client, photo, fal, django_capture_on_commit_callbacks
):
    session_id = select(alice_client, photo, style_id="chibi_2head").json()["session_id"]
    generate(alice_client, session_id, django_capture_on_commit_callbacks)
    sent = fal.submitted("fal-ai/flux-2/edit")
    assert len(sent) == 24
    args = next(r.arguments for r in sent if "arms crossed" in r.arguments["prompt"])
    assert args["prompt"].startswith(
        "chibi style, 2-head tall proportion, cute large head, small body, simple colored, "
    )
    assert args["image_urls"] == [fal.submissions[0].arguments["image_urls"][0]]
    assert args["image_size"] == "square_hd"


def test_custom_style_uses_the_users_text(
    alice_client, photo, fal, django_capture_on_commit_callbacks
):
    session_id = select(
        alice_client, photo, style_id="custom", custom_prompt="Pixar 3D style"
    ).json()["session_id"]
    generate(alice_client, session_id, django_capture_on_commit_callbacks)
    assert all(r.arguments["prompt"].startswith("Pixar 3D style, ") for r in fal.submissions)


def test_a_cut_failing_three_times_is_an_empty_slot_with_its_reason(
    alice_client, photo, fal, django_capture_on_commit_callbacks
):
    fal.fail("submit", status=500, times=3, match=lambda a: "big laugh" in a.get("prompt", ""))
    session_id = select(alice_client, photo).json()["session_id"]
    task_id = generate(alice_client, session_id, django_capture_on_commit_callbacks).json()[
        "task_id"
    ]
    status = alice_client.get(f"/api/character/generation-status/{task_id}").json()
    assert status["status"] == "completed"
    assert status["completed_cuts"] == 23
    assert status["preview_urls"][1] is None
    failed = status["cuts"][1]
    assert failed["state"] == "failed" and failed["error"] and not failed["selected"]
    assert len([r for r in fal.submissions if "big laugh" in r.arguments["prompt"]]) == 0


def test_generating_twice_is_a_conflict(
    alice_client, photo, offline, django_capture_on_commit_callbacks
):
    session_id = select(alice_client, photo).json()["session_id"]
    generate(alice_client, session_id, django_capture_on_commit_callbacks)
    again = generate(alice_client, session_id, django_capture_on_commit_callbacks)
    assert again.status_code == 409
    assert Cut.objects.count() == 24


def test_ten_minute_deadline_keeps_what_finished(alice_client, photo, fal, user):
    fal.queue_polls = 10_000
    job = start_without_running(alice_client, photo)
    jobs.advance_job(job.pk)  # all 24 submitted, all stuck in fal's queue
    with time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=5)):
        jobs.advance_job(job.pk)
        status = alice_client.get(f"/api/character/generation-status/{job.public_id}").json()
    assert status["status"] == "failed"
    assert status["message"] == "생성이 지연되고 있습니다. 잠시 후 다시 시도해주세요."
    assert fal.count("cancel") == 24


def test_worker_killed_mid_generation_resumes_without_resubmitting(alice_client, photo, fal):
    fal.queue_polls = 2
    job = start_without_running(alice_client, photo)
    assert jobs.claim(job.pk)
    jobs.advance_job(job.pk)  # the worker submits everything, then dies holding the lease
    assert len(fal.submissions) == 24
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        jobs.reconcile()  # a restarted worker picks the job up from the saved request ids
    status = alice_client.get(f"/api/character/generation-status/{job.public_id}").json()
    assert status["completed_cuts"] == 24
    assert len(fal.submissions) == 24


def test_other_users_task_is_404(alice_client, other_user, offline):
    from characters import generation

    session = generation.select_style(
        owner=other_user,
        photo_id=make_photo(other_user).public_id,
        style_id="original",
        custom_prompt=None,
    )
    job = generation.start_generation(owner=other_user, session_id=session.public_id)
    assert alice_client.get(f"/api/character/generation-status/{job.public_id}").status_code == 404
    response = alice_client.post(
        "/api/character/generate-24-cuts",
        {"session_id": str(session.public_id)},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_offline_backend_renders_all_cuts_from_the_photo(
    alice_client, photo, offline, django_capture_on_commit_callbacks
):
    session_id = select(alice_client, photo, style_id="kakao_emoticon").json()["session_id"]
    task_id = generate(alice_client, session_id, django_capture_on_commit_callbacks).json()[
        "task_id"
    ]
    status = alice_client.get(f"/api/character/generation-status/{task_id}").json()
    assert status["completed_cuts"] == 24
    sizes = {Image.open(c.image).size for c in Cut.objects.all()}
    assert sizes == {(1024, 1024)}
