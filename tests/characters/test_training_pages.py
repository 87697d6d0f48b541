"""Steps 5–8 as pages: prepare, the cost notice, progress, completion, My Characters."""

import pytest

from characters import generation, training
from characters.models import Character
from tests.characters.test_curation import astronaut_photo
from webtoon.jobs import services as jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def curated(user, offline, django_capture_on_commit_callbacks):
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        generation.start_generation(owner=user, session_id=session.public_id)
    return session


def test_prepare_page_packages_and_leads_to_the_cost_notice(alice_client, curated):
    url = f"/characters/sessions/{curated.public_id}/prepare/"
    page = alice_client.get(url).content.decode()
    assert "학습 데이터 준비" in page and "캐릭터 이름" in page
    response = alice_client.post(url, {"name": "박사장", "trigger_word": ""})
    character = Character.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/characters/{character.public_id}/train/"
    notice = alice_client.get(response["Location"]).content.decode()
    assert "sks_parksajang" in notice
    expected = ("LoRA 학습", "$2.00", "₩2,800", "학습 시작 · $2.00 · ₩2,800 →", "취소",
                "추가 학습 비용은 없습니다")
    for text in expected:
        assert text in notice
    assert character.status == "draft" and character.training_job is None


def test_prepare_page_shows_a_bad_trigger_word_in_korean(alice_client, curated):
    url = f"/characters/sessions/{curated.public_id}/prepare/"
    page = alice_client.post(url, {"name": "박사장", "trigger_word": "Bad Word!"})
    assert page.status_code == 200
    assert "트리거 워드는" in page.content.decode()
    assert not Character.objects.exists()


def test_whole_flow_on_the_offline_backend_ends_active_with_three_samples(
    alice_client, curated, user, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 0
    alice_client.post(
        f"/characters/sessions/{curated.public_id}/prepare/", {"name": "김세무사"}
    )
    character = Character.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/characters/{character.public_id}/train/")
    assert response["Location"] == f"/characters/{character.public_id}/"
    character.refresh_from_db()
    for _ in range(20):
        if character.status == "active" and not character.samples.filter(image="").exists():
            break
        with django_capture_on_commit_callbacks(execute=True):
            jobs.advance_job(character.training_job_id)
            if character.samples_job_id:
                jobs.run_job(character.samples_job_id)
        character.refresh_from_db()
    assert character.status == "active"
    assert character.lora_file_backed_up
    page = alice_client.get(f"/characters/{character.public_id}/").content.decode()
    assert "캐릭터 학습 완료!" in page and "김세무사" in page
    assert page.count('data-testid="sample"') == 3
    assert "일관성 점수" in page
    assert character.trigger_word in page
    assert "캐릭터 관리로 이동" in page and "바로 웹툰 만들기" in page
    listing = alice_client.get("/characters/").content.decode()
    assert "김세무사" in listing and character.trigger_word in listing
    home = alice_client.get("/").content.decode()
    assert 'data-testid="notification-badge"' in home
    assert training.consistency(character)["measured"] >= 1
    # SPEC §7: the app-data folder copy, listed in characters_index.json.
    import json
    from pathlib import Path

    character.refresh_from_db()
    folder = Path(character.local_backup_path)
    assert (folder / "lora_weights.safetensors").read_bytes() == character.lora_file.read()
    assert len(list((folder / "samples").iterdir())) == 3
    index = json.loads((folder.parent / "characters_index.json").read_text("utf-8"))
    assert character.trigger_word in json.dumps(index)
