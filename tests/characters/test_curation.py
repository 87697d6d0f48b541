"""Step 4: curation — select-cuts, additional cuts, per-cut regenerate, quality checks,
and the curation page (htmx grid)."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from characters import checks, curation, generation
from characters.models import Cut, Photo
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"


def astronaut_photo(owner) -> Photo:
    """The real face photo, stored the way the upload step stores it."""
    from PIL import Image

    with Image.open(TESTDATA / "astronaut.png") as im:
        import io

        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=95)
    photo = Photo(
        owner=owner, width=512, height=512, source_format="PNG", consent_at=timezone.now(),
        face_detected=True,
    )
    photo.image.save(f"u/{owner.pk}/photos/astronaut.jpg", ContentFile(buf.getvalue()), save=False)
    photo.save()
    return photo


def post(client, path, body):
    return client.post(f"/api/character/{path}", body, content_type="application/json")


@pytest.fixture
def generated(alice_client, user, fal, django_capture_on_commit_callbacks):
    """A session whose 24 cuts went through the fal fake (Kontext path) and the checks."""
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = generation.start_generation(owner=user, session_id=session.public_id)
    session.refresh_from_db()
    return session, job


def status(client, task_id):
    return client.get(f"/api/character/generation-status/{task_id}").json()


def test_every_finished_cut_is_checked_and_kept_when_it_shows_the_same_person(
    alice_client, generated
):
    session, job = generated
    body = status(alice_client, job.public_id)
    assert body["completed_cuts"] == 24
    checked = [c for c in body["cuts"] if c["quality_ok"] is not None]
    assert len(checked) == 24
    kept = [c for c in body["cuts"] if c["quality_ok"]]
    assert len(kept) >= 20
    for cut in kept:
        assert cut["similarity"] is not None and cut["similarity"] < 0.6
        assert cut["selected"] is True


def test_select_cuts_reports_count_minimum_and_training_estimate(alice_client, generated):
    session, _ = generated
    response = post(
        alice_client,
        "select-cuts",
        {"session_id": str(session.public_id), "selected_cut_ids": list(range(1, 21))},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["selected_count"] == 20
    assert body["meets_minimum"] is True
    assert body["estimated_training_cost"] == 2.0
    assert body["estimated_training_time_seconds"] == 1200
    assert set(session.cuts.filter(selected=True).values_list("number", flat=True)) == set(
        range(1, 21)
    )


def test_select_cuts_under_the_minimum_warns_but_is_allowed(alice_client, generated):
    session, _ = generated
    body = post(
        alice_client,
        "select-cuts",
        {"session_id": str(session.public_id), "selected_cut_ids": [1, 2, 3]},
    ).json()
    assert body["selected_count"] == 3
    assert body["meets_minimum"] is False
    assert "학습하려면 최소 15장을 선택해야 합니다" in body["warning"]


def test_select_cuts_with_ids_of_another_session_is_422_and_changes_nothing(
    alice_client, generated
):
    session, _ = generated
    before = list(session.cuts.values_list("number", "selected"))
    response = post(
        alice_client,
        "select-cuts",
        {"session_id": str(session.public_id), "selected_cut_ids": [1, 2, 99]},
    )
    assert response.status_code == 422
    assert "99" in response.json()["detail"]
    assert list(session.cuts.values_list("number", "selected")) == before


def test_coverage_counts_selected_cuts_per_category(alice_client, generated):
    session, _ = generated
    # Keep everything but the four angle cuts (9-12).
    keep = [n for n in range(1, 25) if n not in (9, 10, 11, 12)]
    body = post(
        alice_client,
        "select-cuts",
        {"session_id": str(session.public_id), "selected_cut_ids": keep},
    ).json()
    angle = next(row for row in body["coverage"] if row["category"] == "angle")
    assert angle == {"category": "angle", "label": "측면", "count": 0, "short": True}
    summary = curation.summarize(session)
    assert "측면 0장 — 추가 생성 권장" in [row.text for row in summary.coverage]


def test_additional_cuts_go_to_the_weakest_category_with_new_prompts(
    alice_client, generated, fal, django_capture_on_commit_callbacks
):
    session, job = generated
    keep = [n for n in range(1, 25) if n not in (9, 10, 11, 12)]
    post(alice_client, "select-cuts", {"session_id": str(session.public_id),
                                       "selected_cut_ids": keep})
    before = {r.arguments["prompt"] for r in fal.submissions}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(alice_client, "generate-additional", {"session_id": str(session.public_id)})
    assert response.status_code == 202
    body = response.json()
    assert body["category"] == "angle"
    assert body["cut_ids"] == [25, 26, 27, 28]
    assert body["total_cuts"] == 28
    assert body["estimated_cost"] == pytest.approx(0.16)  # 4 Kontext pro images at $0.04
    new_prompts = [r.arguments["prompt"] for r in fal.submissions[24:]]
    assert len(new_prompts) == 4 and not set(new_prompts) & before
    # Either task id reports the whole session: 28 cuts.
    for task_id in (job.public_id, body["task_id"]):
        whole = status(alice_client, task_id)
        assert whole["total_cuts"] == 28
        assert whole["completed_cuts"] == 28
    assert [c["category"] for c in whole["cuts"][24:]] == ["angle"] * 4


def test_additional_with_an_explicit_category_and_count(
    alice_client, generated, django_capture_on_commit_callbacks
):
    session, _ = generated
    with django_capture_on_commit_callbacks(execute=True):
        body = post(
            alice_client,
            "generate-additional",
            {"session_id": str(session.public_id), "count": 2, "category": "pose"},
        ).json()
    cuts = Cut.objects.filter(session=session, number__in=body["cut_ids"])
    assert {c.category for c in cuts} <= {"upper_body", "full_body"}
    assert len(cuts) == 2


@pytest.mark.parametrize(
    "extra", [{"count": 9}, {"count": 0}, {"category": "hands"}]
)
def test_additional_rejects_bad_input(alice_client, generated, extra):
    session, _ = generated
    response = post(
        alice_client, "generate-additional", {"session_id": str(session.public_id), **extra}
    )
    assert response.status_code == 422
    assert Cut.objects.filter(session=session).count() == 24


def test_additional_stops_when_a_category_has_no_new_prompts(
    alice_client, generated, django_capture_on_commit_callbacks
):
    session, _ = generated
    body = {"session_id": str(session.public_id), "count": 8, "category": "scene"}
    with django_capture_on_commit_callbacks(execute=True):
        assert post(alice_client, "generate-additional", body).status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        again = post(alice_client, "generate-additional", body)
    assert again.status_code == 409
    assert again.json()["detail"] == "이 분류에서는 더 만들 수 있는 새로운 컷이 없습니다."


def test_regenerate_replaces_just_that_slot(
    alice_client, generated, fal, django_capture_on_commit_callbacks
):
    session, _ = generated
    old = Cut.objects.get(session=session, number=3)
    old_image = old.image.name
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            alice_client, "regenerate-cut", {"session_id": str(session.public_id), "cut_id": 3}
        )
    assert response.status_code == 202
    assert len(fal.submissions) == 25
    assert "surprised expression" in fal.submissions[-1].arguments["prompt"]
    cut = Cut.objects.get(session=session, number=3)
    assert cut.image.name and cut.image.name != old_image
    assert cut.quality_ok is not None
    assert Cut.objects.filter(session=session).count() == 24


def test_regenerating_a_cut_still_in_flight_is_a_conflict(alice_client, user, fal):
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    generation.start_generation(owner=user, session_id=session.public_id)  # runner not run
    response = post(
        alice_client, "regenerate-cut", {"session_id": str(session.public_id), "cut_id": 1}
    )
    assert response.status_code == 409


def test_a_cut_of_someone_else_is_checked_against_their_photo_only(
    alice_client, other_user, offline
):
    photo = astronaut_photo(other_user)
    session = generation.select_style(
        owner=other_user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    sid = str(session.public_id)
    for path, body in [
        ("select-cuts", {"session_id": sid, "selected_cut_ids": [1]}),
        ("generate-additional", {"session_id": sid}),
        ("regenerate-cut", {"session_id": sid, "cut_id": 1}),
    ]:
        assert post(alice_client, path, body).status_code == 404
    for url in (f"/characters/sessions/{sid}/", f"/characters/sessions/{sid}/poll/"):
        assert alice_client.get(url).status_code == 404
    assert alice_client.post(f"/characters/sessions/{sid}/cuts/1/toggle/").status_code == 404
    assert Job.objects.count() == 0


# --- quality judgement per style ---------------------------------------------------------------
def _stored_cut(session, number, image_path, **extra) -> Cut:
    data = Path(image_path).read_bytes()
    cut = Cut.objects.create(
        session=session, number=number, template_id=number, category="expression",
        pose_prompt="p", label_ko="라벨", **extra,
    )
    cut.image.save(f"u/{session.owner_id}/cuts/{number}.jpg", ContentFile(data))
    return cut


@pytest.mark.parametrize("style, unchecked", [("original", True), ("chibi_2head", False)])
def test_another_persons_face_is_unchecked_only_for_realistic_styles(user, style, unchecked):
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id=style,
        custom_prompt=None,
    )
    cut = _stored_cut(session, 1, TESTDATA / "grace_hopper.jpg")
    checked = checks.check_cut(cut.pk)
    assert checked.similarity is not None and checked.similarity > 0.6
    assert checked.selected is (not unchecked)
    assert checked.quality_ok is (not unchecked)
    if unchecked:
        assert checked.quality_reasons


def test_a_near_duplicate_cut_is_unchecked_with_its_reason(user):
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    first = checks.check_cut(_stored_cut(session, 1, TESTDATA / "astronaut.png").pk)
    second = checks.check_cut(_stored_cut(session, 2, TESTDATA / "astronaut.png").pk)
    assert first.selected and first.quality_ok
    assert not second.selected and not second.quality_ok
    assert any("같은" in r for r in second.quality_reasons)


# --- the page ----------------------------------------------------------------------------------
def test_curation_page_shows_the_grid_counter_and_buttons(alice_client, generated):
    session, _ = generated
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert "캐릭터 학습 이미지 선별" in page
    selected = session.cuts.filter(selected=True).count()
    assert f"선택: {selected}/24장 (최소 15장 이상 필요)" in page
    buttons = ("전체 선택", "전체 해제", "추가 생성 (4컷)", "다음 단계: ")
    for text in (*buttons, "정면 미소"):
        assert text in page
    assert page.count('data-testid="cut"') == 24


def test_toggling_a_cut_updates_the_counter_fragment(alice_client, generated):
    session, _ = generated
    session.cuts.update(selected=True)
    response = alice_client.post(
        f"/characters/sessions/{session.public_id}/cuts/5/toggle/", {}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "선택: 23/24장" in html
    assert not Cut.objects.get(session=session, number=5).selected


def test_clear_all_then_select_all(alice_client, generated):
    session, _ = generated
    url = f"/characters/sessions/{session.public_id}/cuts/"
    html = alice_client.post(url + "clear-all/", HTTP_HX_REQUEST="true").content.decode()
    assert "선택: 0/24장" in html and "학습하려면 최소 15장을 선택해야 합니다" in html
    html = alice_client.post(url + "select-all/", HTTP_HX_REQUEST="true").content.decode()
    assert "선택: 24/24장" in html


def test_poll_sends_only_cells_that_changed(alice_client, user, fal):
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    generation.start_generation(owner=user, session_id=session.public_id)  # not run yet
    url = f"/characters/sessions/{session.public_id}/poll/"
    first = alice_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert first.count('data-testid="cut"') == 24
    # The first poll ran a pass; the browser now knows every cell as the poller says.
    tokens = re.search(r"known=([^\"&]*)", first)
    known = unquote(tokens.group(1)) if tokens else ""
    quiet = alice_client.get(url, {"known": known}, HTTP_HX_REQUEST="true").content.decode()
    assert quiet.count('data-testid="cut"') == 0


def test_a_quality_check_lost_with_its_worker_is_run_again(user):
    from datetime import timedelta

    from webtoon.jobs import services as jobs
    from webtoon.jobs.services import CallSpec

    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    job = jobs.create_job(
        owner=user, kind="image", calls=[CallSpec("e", {}), CallSpec("e", {}, slot=1)],
        start=False,
    )
    old, recent = job.calls.order_by("slot")
    now = timezone.now()
    old.finished_at, recent.finished_at = now - timedelta(minutes=5), now - timedelta(seconds=30)
    old.save(), recent.save()
    lost = _stored_cut(session, 1, TESTDATA / "astronaut.png", call=old)
    busy = _stored_cut(session, 2, TESTDATA / "grace_hopper.jpg", call=recent)
    assert checks.recheck_stale_cuts() == 1  # the test queue runs the check at once
    lost.refresh_from_db(), busy.refresh_from_db()
    assert lost.quality_ok is True and lost.similarity is not None
    assert busy.quality_ok is None  # its check may still be queued: left alone
