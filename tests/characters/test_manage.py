"""My Characters: list, detail, edit, soft delete and purge, test-generate, retrain."""

from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.utils import timezone

from characters import management
from characters.models import Character, CharacterImage
from tests.characters.factories import trained_character
from webtoon.jobs import services as jobs
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db


def api(client, method, path, body=None):
    return getattr(client, method)(
        f"/api/character/{path}", body, content_type="application/json"
    )


@pytest.fixture
def character(user):
    return trained_character(user)


# --- list and detail ------------------------------------------------------------------------------
def test_list_shows_the_owners_characters_with_spec_fields(alice_client, user, other_user):
    mine = trained_character(user)
    trained_character(other_user, name="남의 캐릭터")
    body = api(alice_client, "get", "list").json()
    assert body["count"] == 1
    item = body["items"][0]
    assert item["id"] == str(mine.public_id)
    assert item["trigger_word"] == mine.trigger_word
    assert item["status"] == "active" and item["version"] == 1
    assert len(item["sample_images"]) == 3
    assert item["lora_scale_default"] == 0.8
    assert item["original_photo_url"].startswith("/media/u/")


@pytest.mark.parametrize("count", [1, 12])
def test_list_api_and_page_run_a_fixed_number_of_queries(
    alice_client, user, count, django_assert_max_num_queries
):
    for i in range(count):
        trained_character(user, name=f"캐릭터 {i}")
    with django_assert_max_num_queries(12):
        assert api(alice_client, "get", "list").status_code == 200
    with django_assert_max_num_queries(14):
        page = alice_client.get("/characters/").content.decode()
    assert page.count('data-testid="character-card"') == count


def test_list_page_card_shows_what_spec_asks(alice_client, character):
    page = alice_client.get("/characters/").content.decode()
    for text in (character.name, character.trigger_word, "3/24장", "0.8", "테스트 생성", "재학습",
                 "다운로드", "삭제", "새 캐릭터 학습"):
        assert text in page


# --- edit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale, status", [(0.1, 200), (1.5, 200), (0.09, 422), (1.51, 422)])
def test_patch_scale_bounds(alice_client, character, scale, status):
    response = api(alice_client, "patch", str(character.public_id), {"lora_scale_default": scale})
    assert response.status_code == status
    character.refresh_from_db()
    assert character.lora_scale_default == (scale if status == 200 else 0.8)


def test_rename_keeps_the_trigger_word(alice_client, character):
    trigger = character.trigger_word
    body = api(alice_client, "patch", str(character.public_id), {"name": "김세무사"}).json()
    assert body["name"] == "김세무사" and body["trigger_word"] == trigger


# --- delete and purge -------------------------------------------------------------------------
def test_delete_is_soft_then_404_and_out_of_the_list(alice_client, character):
    assert api(alice_client, "delete", str(character.public_id)).status_code == 204
    assert api(alice_client, "get", str(character.public_id)).status_code == 404
    assert api(alice_client, "get", "list").json()["count"] == 0
    character.refresh_from_db()
    assert character.status == "deleted" and character.deleted_at
    assert default_storage.exists(character.lora_file.name)  # kept for an undelete


def test_undelete_within_the_period_brings_it_back(alice_client, character):
    management.delete_character(owner=character.owner, character_id=character.public_id)
    management.undelete_character(Character.objects.get(pk=character.pk))
    assert api(alice_client, "get", str(character.public_id)).json()["status"] == "active"


def test_purge_removes_rows_and_files_only_after_the_period(character, settings):
    settings.SOFT_DELETE_DAYS = 30
    files = management.character_files(character)
    management.delete_character(owner=character.owner, character_id=character.public_id)
    with time_machine.travel(timezone.now() + timedelta(days=29)):
        assert management.purge_deleted() == 0
    assert Character.objects.filter(pk=character.pk).exists()
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert management.purge_deleted() == 1
    assert not Character.objects.filter(pk=character.pk).exists()
    assert files and not any(default_storage.exists(name) for name in files)


def test_delete_page_asks_twice_then_the_card_goes(alice_client, character):
    base = f"/characters/{character.public_id}/delete/"
    first = alice_client.get(base + "confirm/1/", HTTP_HX_REQUEST="true").content.decode()
    assert "정말 삭제하시겠습니까? 삭제하면 이 캐릭터를 다시 사용할 수 없습니다." in first
    assert "백업" in first
    second = alice_client.get(base + "confirm/2/", HTTP_HX_REQUEST="true").content.decode()
    assert "마지막 확인" in second
    response = alice_client.post(base, HTTP_HX_REQUEST="true")
    # The card is swapped for nothing; the page says what happened (issue 15).
    assert response.status_code == 200
    assert f"&#x27;{character.name}&#x27; 캐릭터를 삭제했습니다." in response.content.decode()
    assert 'hx-swap-oob="true"' in response.content.decode()
    assert Character.objects.get(pk=character.pk).status == "deleted"


# --- test generate ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed, sent",
    [
        ("smiling in an office", "{t}, smiling in an office"),
        ("{t}, smiling", "{t}, smiling"),
        ("a photo of {t} smiling", "a photo of {t} smiling"),
        ("", "{t}"),
    ],
)
def test_trigger_word_is_inserted_once(typed, sent):
    t = "sks_parksajang"
    assert management.with_trigger(typed.format(t=t), t) == sent.format(t=t)


def test_test_generate_sends_the_lora_at_the_chosen_scale_and_keeps_the_result(
    alice_client, character, fal, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(
            alice_client,
            "post",
            f"{character.public_id}/test-generate",
            {"prompt": "waving", "scale": 1.2, "image_size": "portrait_4_3"},
        )
    assert response.status_code == 202
    sent = fal.submitted("fal-ai/flux-lora")[-1].arguments
    assert sent["prompt"] == f"{character.trigger_word}, waving"
    assert sent["loras"] == [{"path": character.lora_url, "scale": 1.2}]
    assert sent["image_size"] == "portrait_4_3"
    assert sent["num_inference_steps"] == 28
    gallery = api(alice_client, "get", f"{character.public_id}/gallery").json()
    assert len(gallery) == 1
    assert gallery[0]["url"] and gallery[0]["scale"] == 1.2
    assert gallery[0]["seed"] == sent["seed"]


@pytest.mark.parametrize("body", [{"scale": 1.6}, {"scale": 0.0}, {"image_size": "huge"}])
def test_test_generate_rejects_bad_input(alice_client, character, body):
    response = api(alice_client, "post", f"{character.public_id}/test-generate", body)
    assert response.status_code == 422
    assert not CharacterImage.objects.exists()


def test_test_generate_page_adds_a_gallery_item(
    alice_client, character, offline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            f"/characters/{character.public_id}/test-generate/",
            {"prompt": "smiling", "scale": "1.2", "image_size": "square_hd"},
            HTTP_HX_REQUEST="true",
        ).content.decode()
    assert 'data-testid="gallery-item"' in html
    image = CharacterImage.objects.get()
    assert image.scale == 1.2 and image.prompt.startswith(character.trigger_word)


# --- retrain --------------------------------------------------------------------------------------
def test_retrain_needs_the_cost_confirmation_and_new_images(alice_client, character):
    path = f"{character.public_id}/retrain"
    assert api(alice_client, "post", path, {"mode": "new"}).status_code == 422
    no_images = api(alice_client, "post", path, {"mode": "new", "confirm_cost": True})
    assert no_images.status_code == 422
    assert not Job.objects.exists()


@pytest.mark.parametrize("mode, versions", [("new", [1, 2]), ("replace", [1])])
def test_retrain_adds_a_version_or_replaces_the_current_one(
    alice_client, user, character, mode, versions, offline, settings,
    django_capture_on_commit_callbacks,
):
    from tests.characters.test_curation import astronaut_photo

    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 0
    photo = astronaut_photo(user)
    old_lora = character.lora_file.name
    with django_capture_on_commit_callbacks(execute=True):
        response = api(
            alice_client,
            "post",
            f"{character.public_id}/retrain",
            {"mode": mode, "confirm_cost": True, "photo_ids": [str(photo.public_id)]},
        )
    assert response.status_code == 202
    assert response.json()["image_count"] == 4  # the 3 it had + the new photo
    character.refresh_from_db()
    assert character.status == "active"  # usable with its current version meanwhile
    for _ in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            jobs.advance_job(character.training_job_id)
        character.refresh_from_db()
        if character.training_job.is_terminal:
            break
    assert sorted(character.versions.values_list("number", flat=True)) == versions
    assert character.current_version.number == versions[-1]
    assert character.lora_file.name != old_lora
    assert character.current_version.training_images_count == 4


def test_another_users_character_is_404_everywhere(alice_client, other_user):
    theirs = trained_character(other_user)
    cid = str(theirs.public_id)
    assert api(alice_client, "get", cid).status_code == 404
    assert api(alice_client, "patch", cid, {"name": "x"}).status_code == 404
    assert api(alice_client, "delete", cid).status_code == 404
    assert api(alice_client, "post", f"{cid}/test-generate", {}).status_code == 404
    assert api(alice_client, "get", f"{cid}/gallery").status_code == 404
    assert api(alice_client, "post", f"{cid}/retrain", {"confirm_cost": True}).status_code == 404
    for page in ("", "card/", "retrain/", "delete/confirm/1/"):
        assert alice_client.get(f"/characters/{cid}/{page}").status_code == 404
    assert alice_client.post(f"/characters/{cid}/delete/").status_code == 404
    assert Character.objects.get(pk=theirs.pk).status == "active"


# --- expired fal URLs (SPEC §11.3) ------------------------------------------------------------
def _expired_character(user, fal):
    url = fal.add_file("old-lora.safetensors", b"x")
    character = trained_character(user, lora_url=url)
    fal.expire(url)
    return character, url


def test_an_expired_lora_url_is_reuploaded_from_our_copy_and_retried_once(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character, old_url = _expired_character(user, fal)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice_client, "post", f"{character.public_id}/test-generate", {})
    job = Job.objects.get(public_id=response.json()["task_id"])
    assert job.state == "succeeded"
    sent = [r.arguments["loras"][0]["path"] for r in fal.submitted("fal-ai/flux-lora")]
    assert sent[0] == old_url and len(sent) == 2
    character.refresh_from_db()
    assert sent[1] == character.lora_url != old_url
    assert character.current_version.lora_url == character.lora_url
    assert fal.files[character.lora_url.rsplit("/", 1)[-1]][0] == character.lora_file.read()
    assert CharacterImage.objects.get().image


def test_an_expired_lora_without_our_copy_tells_the_user_to_restore(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character, old_url = _expired_character(user, fal)
    character.current_version.lora_file = ""
    character.current_version.save()
    Character.objects.filter(pk=character.pk).update(lora_file="")
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice_client, "post", f"{character.public_id}/test-generate", {})
    job = Job.objects.get(public_id=response.json()["task_id"])
    assert job.state == "failed"
    assert job.error_message == "LoRA 파일이 만료되었습니다. 백업에서 복원해주세요."
    assert CharacterImage.objects.get().error == job.error_message
    assert len(fal.submitted("fal-ai/flux-lora")) == 1  # no blind retries of a dead URL


def test_retrain_page_of_a_restored_character_without_a_session_opens(alice_client, user):
    character = trained_character(user)  # as a restore makes it: no creation session
    assert character.session_id is None
    page = alice_client.get(f"/characters/{character.public_id}/retrain/")
    assert page.status_code == 200
    assert "컷 더 만들기" not in page.content.decode()
    assert "사진 추가" in page.content.decode()
