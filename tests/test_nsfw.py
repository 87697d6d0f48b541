"""fal's safety checker (issue 14 §3): a FLUX output with `has_nsfw_concepts: [true]` is a
blacked-out picture. The cut, test image or scene says "안전 필터에 걸렸습니다", is never kept
as a good image, and can be made again. All on the fal path (fal-client through the fake)."""

import pytest

from characters import generation
from characters.models import CharacterImage, Cut
from scenes.models import Scene
from tests.characters.factories import trained_character
from tests.characters.test_curation import astronaut_photo

pytestmark = pytest.mark.django_db

FILTERED = "안전 필터에 걸렸습니다"


def big_laugh(arguments: dict) -> bool:
    return "big laugh" in arguments.get("prompt", "")


@pytest.fixture
def generated(alice_client, user, fal, settings, django_capture_on_commit_callbacks):
    """Four cuts through the fake; fal's safety checker flags the "big laugh" one (cut 2)."""
    settings.GENERATION_CUTS_COUNT = 4
    fal.nsfw(match=big_laugh, times=1)
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = generation.start_generation(owner=user, session_id=session.public_id)
    return session, job


def test_a_flagged_cut_is_marked_unselected_and_not_a_good_cut(alice_client, generated, fal):
    session, job = generated
    flagged = [r for r in fal.submissions if big_laugh(r.arguments)]
    assert len(flagged) == 1
    assert fal.requests[flagged[0].request_id].output["has_nsfw_concepts"] == [True]
    status = alice_client.get(f"/api/character/generation-status/{job.public_id}").json()
    cut = status["cuts"][1]
    assert cut["state"] == "failed" and cut["error"] == FILTERED
    assert cut["url"] is None and cut["selected"] is False
    assert cut["quality_ok"] is False and cut["quality_reasons"] == [FILTERED]
    assert status["completed_cuts"] == 3 and status["preview_urls"][1] is None
    # The other cuts are untouched, and the black picture can never be selected for training.
    assert [c["state"] for c in status["cuts"]] == ["completed", "failed", "completed", "completed"]
    body = {"session_id": str(session.public_id), "selected_cut_ids": [1, 2]}
    response = alice_client.post(
        "/api/character/select-cuts", body, content_type="application/json"
    )
    assert response.status_code == 422


def test_a_flagged_cut_shows_the_message_and_offers_regenerate_on_the_page(
    alice_client, generated
):
    session, _ = generated
    html = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    cell = html[html.index('id="cut-2"') : html.index('id="cut-3"')]
    assert FILTERED in cell
    assert f"/characters/sessions/{session.public_id}/cuts/2/regenerate/" in cell
    assert "얼굴 비교" not in cell  # no identity line for a picture that was never kept


def test_regenerating_a_flagged_cut_gives_a_good_one(
    alice_client, generated, fal, django_capture_on_commit_callbacks
):
    session, _ = generated
    body = {"session_id": str(session.public_id), "cut_id": 2}
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/api/character/regenerate-cut", body, content_type="application/json"
        )
    assert response.status_code == 202
    cut = Cut.objects.get(session=session, number=2)
    assert cut.image and cut.error == "" and cut.selected
    assert cut.quality_ok is not None and FILTERED not in cut.quality_reasons


def test_a_flagged_test_image_shows_the_message_and_no_picture(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    fal.nsfw()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/api/character/{character.public_id}/test-generate",
            {"prompt": "waving"},
            content_type="application/json",
        )
    assert response.status_code == 202
    gallery = alice_client.get(f"/api/character/{character.public_id}/gallery").json()
    assert len(gallery) == 1
    assert gallery[0]["url"] is None and gallery[0]["error"] == FILTERED
    assert not CharacterImage.objects.get().image
    html = alice_client.get(character.get_absolute_url()).content.decode()
    assert f"⚠️ {FILTERED}" in html


def test_a_flagged_scene_shows_the_message_and_can_be_made_again(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    boss = trained_character(user, name="박사장")
    fal.nsfw(times=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/api/scene/generate-with-character",
            {"character_id": str(boss.public_id), "expression": "미소"},
            content_type="application/json",
        )
    scene_id = response.json()["scene_id"]
    scene = alice_client.get(f"/api/scene/{scene_id}").json()
    assert scene["status"] == "failed" and scene["error"] == FILTERED
    assert scene["image_url"] is None and not Scene.objects.get().image
    html = alice_client.get("/scenes/").content.decode()
    assert f"⚠️ {FILTERED}" in html and f"/scenes/{scene_id}/regenerate/" in html
    with django_capture_on_commit_callbacks(execute=True):
        again = alice_client.post(f"/api/scene/{scene_id}/regenerate")
    new = alice_client.get(f"/api/scene/{again.json()['scene_id']}").json()
    assert new["status"] == "completed" and new["image_url"] and new["error"] == ""
