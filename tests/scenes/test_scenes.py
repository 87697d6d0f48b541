"""Scenes (SPEC §6): one character, prompt mode, two characters, expired LoRA URLs, the
gallery and the scene page."""

import re

import pytest
from django.core.files.storage import default_storage

from characters.models import Character, CharacterVersion
from scenes.models import Scene
from tests.characters.factories import trained_character
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db

LORA = "fal-ai/flux-lora"


def api(client, method, path, body=None):
    return getattr(client, method)(f"/api/scene/{path}", body, content_type="application/json")


def generate_one(client, capture, **body):
    with capture(execute=True):
        return api(client, "post", "generate-with-character", body)


def generate_two(client, capture, **body):
    with capture(execute=True):
        return api(client, "post", "generate-two-characters", body)


@pytest.fixture
def boss(user):
    return trained_character(user, name="박사장")


@pytest.fixture
def pair(user):
    a = trained_character(user, name="김대리", lora_url="https://v3.fal.media/files/a.st")
    b = trained_character(user, name="이부장", lora_url="https://v3.fal.media/files/b.st")
    return a, b


def untrained(user, status):
    return Character.objects.create(
        owner=user,
        name="학습중",
        trigger_word=f"sks_{status}",
        style_id="original",
        status=status,
    )


# --- one character ------------------------------------------------------------------------------
def test_one_character_scene_sends_the_spec_arguments_and_keeps_the_scene(
    alice_client, boss, fal, django_capture_on_commit_callbacks
):
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="웃으며 설명",
        location="사무실",
        situation="세금 신고를 설명하는",
    )
    assert response.status_code == 202
    (request,) = fal.submitted(LORA)
    sent = request.arguments
    assert sent["prompt"] == (
        f"{boss.trigger_word}, smiling while explaining, office, explaining a tax filing"
    )
    assert sent["loras"] == [{"path": boss.lora_url, "scale": 0.8}]
    assert sent["image_size"] == "portrait_4_3"
    assert sent["num_inference_steps"] == 28

    scene = api(alice_client, "get", response.json()["scene_id"]).json()
    assert scene["status"] == "completed" and scene["mode"] == "one"
    assert scene["prompt"] == sent["prompt"] and scene["seed"] == sent["seed"]
    assert scene["characters"] == [
        {
            "role": "A",
            "character_id": str(boss.public_id),
            "trigger_word": boss.trigger_word,
            "version": 1,
            "scale": 0.8,
            # The fake draws the LoRA's face from the same test photo the character has.
            "identity": {"distance": scene["characters"][0]["identity"]["distance"],
                         "verdict": "same", "near_copy": True},
            "identity_words": "닮음 · 높음 · 사진과 거의 같음",
        }
    ]
    image = alice_client.get(scene["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"


def test_one_character_scene_image_is_404_for_another_user(
    alice_client, client, boss, other_user, fal, django_capture_on_commit_callbacks
):
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    )
    url = api(alice_client, "get", response.json()["scene_id"]).json()["image_url"]
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    assert api(client, "get", response.json()["scene_id"]).status_code == 404


def test_one_character_scene_uses_free_text_as_typed_and_the_chosen_scale(
    alice_client, boss, fal, django_capture_on_commit_callbacks
):
    # English passes as typed; free Korean goes through the LLM (issue 15).
    fal.llm_replies["한강 공원 벤치"] = "a bench in Hangang park"
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        lora_scale=1.2,
        expression="  winking   at the reader ",
        location="한강 공원 벤치",
        situation="drinking coffee",
        image_size="square_hd",
    )
    assert response.status_code == 202
    sent = fal.submitted(LORA)[-1].arguments
    assert sent["prompt"] == (
        f"{boss.trigger_word}, winking at the reader, a bench in Hangang park, drinking coffee"
    )
    assert sent["loras"] == [{"path": boss.lora_url, "scale": 1.2}]
    assert sent["image_size"] == "square_hd"
    assert Scene.objects.get().cast.get().scale == 1.2


def test_one_character_scene_uses_the_characters_own_default_scale(
    alice_client, boss, fal, django_capture_on_commit_callbacks
):
    Character.objects.filter(pk=boss.pk).update(lora_scale_default=1.05)
    generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="놀람",
    )
    assert fal.submitted(LORA)[-1].arguments["loras"][0]["scale"] == 1.05


@pytest.mark.parametrize(
    "body",
    [{"lora_scale": 0.09}, {"lora_scale": 1.51}, {"image_size": "huge"}],
)
def test_one_character_scene_rejects_bad_input_and_creates_nothing(
    alice_client, boss, fal, body, django_capture_on_commit_callbacks
):
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
        **body,
    )
    assert response.status_code == 422 and response.json()["detail"]
    assert not Scene.objects.exists() and not Job.objects.exists()
    assert fal.submitted() == []


# --- prompt mode --------------------------------------------------------------------------------
def test_prompt_mode_sends_no_lora_and_only_the_words(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=None,
        expression="놀람",
        location="카페",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["mode"] == "prompt" and body["characters"] == []
    sent = fal.submitted(LORA)[-1].arguments
    assert "loras" not in sent
    assert sent["prompt"] == "surprised expression, cafe"
    assert sent["image_size"] == "portrait_4_3" and sent["num_inference_steps"] == 28
    assert api(alice_client, "get", body["scene_id"]).json()["status"] == "completed"


def test_prompt_mode_with_empty_inputs_is_422(alice_client, user, fal):
    response = api(
        alice_client,
        "post",
        "generate-with-character",
        {"character_id": None, "expression": " ", "location": "", "situation": ""},
    )
    assert response.status_code == 422
    assert "하나 이상" in response.json()["detail"]
    assert not Scene.objects.exists() and fal.submitted() == []


# --- two characters -----------------------------------------------------------------------------
def test_two_character_scene_sends_the_spec_arguments(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    response = generate_two(
        alice_client,
        django_capture_on_commit_callbacks,
        character_a_id=str(a.public_id),
        character_b_id=str(b.public_id),
        location="사무실",
        a_action="질문하는",
        b_action="웃으며 설명",
    )
    assert response.status_code == 202
    assert response.json()["warnings"] == []
    ta, tb = a.trigger_word, b.trigger_word
    sent = fal.submitted(LORA)[-1].arguments
    assert sent["prompt"] == (
        f"{ta} and {tb}, two people in office, {ta} is asking a question, curious expression, "
        f"{tb} is smiling while explaining"
    )
    assert sent["loras"] == [{"path": a.lora_url, "scale": 0.8}, {"path": b.lora_url, "scale": 0.7}]
    assert sent["image_size"] == "landscape_16_9"
    assert sent["num_inference_steps"] == 30
    scene = api(alice_client, "get", response.json()["scene_id"]).json()
    assert scene["status"] == "completed" and scene["mode"] == "two"
    assert [(c["role"], c["trigger_word"], c["scale"]) for c in scene["characters"]] == [
        ("A", ta, 0.8),
        ("B", tb, 0.7),
    ]


def test_two_character_scene_appends_the_situation(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    generate_two(
        alice_client,
        django_capture_on_commit_callbacks,
        character_a_id=str(a.public_id),
        character_b_id=str(b.public_id),
        location="회의실",
        situation="세금 신고를 설명하는",
        a_action="진지함",
        b_action="걱정",
    )
    ta, tb = a.trigger_word, b.trigger_word
    assert fal.submitted(LORA)[-1].arguments["prompt"] == (
        f"{ta} and {tb}, two people in meeting room, {ta} is serious expression, "
        f"{tb} is worried expression, explaining a tax filing"
    )


def test_two_character_scale_sum_over_limit_warns_but_generates(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    response = generate_two(
        alice_client,
        django_capture_on_commit_callbacks,
        character_a_id=str(a.public_id),
        character_b_id=str(b.public_id),
        lora_scale_a=0.9,
        lora_scale_b=0.8,
    )
    assert response.status_code == 202
    (warning,) = response.json()["warnings"]
    assert "1.5" in warning
    assert [lora["scale"] for lora in fal.submitted(LORA)[-1].arguments["loras"]] == [0.9, 0.8]


def test_two_character_scale_sum_warning_is_shown_on_the_page(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            "/scenes/two/",
            {
                "character_a": str(a.public_id),
                "character_b": str(b.public_id),
                "lora_scale_a": "0.9",
                "lora_scale_b": "0.8",
                "location": "카페",
                "confirm_scale_sum": "on",  # the page asks before paying (issue 15)
            },
            HTTP_HX_REQUEST="true",
        ).content.decode()
    assert 'data-testid="scene-warning"' in html
    assert "두 캐릭터 반영 강도의 합이 1.5를 넘습니다" in html
    page = alice_client.get("/scenes/").content.decode()
    assert "두 캐릭터 반영 강도의 합이 1.5를 넘습니다" in page


def test_two_character_default_scales_do_not_warn_on_the_page(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            "/scenes/two/",
            {
                "character_a": str(a.public_id),
                "character_b": str(b.public_id),
                "lora_scale_a": "0.8",
                "lora_scale_b": "0.7",
            },
            HTTP_HX_REQUEST="true",
        ).content.decode()
    assert 'data-testid="scene"' in html and "scene-warning" not in html


def _assert_nothing_made(fal):
    assert not Scene.objects.exists() and not Job.objects.exists()
    assert fal.submitted() == []


def test_two_character_same_character_twice_is_422(alice_client, pair, fal):
    a, _ = pair
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {"character_a_id": str(a.public_id), "character_b_id": str(a.public_id)},
    )
    assert response.status_code == 422
    assert "같은 캐릭터" in response.json()["detail"]
    _assert_nothing_made(fal)


def test_two_character_deleted_character_is_404(alice_client, pair, fal):
    a, b = pair
    Character.objects.filter(pk=b.pk).update(status="deleted")
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {"character_a_id": str(a.public_id), "character_b_id": str(b.public_id)},
    )
    assert response.status_code == 404  # issue 17: gone, like another user's
    assert "삭제된 캐릭터" in response.json()["detail"]
    _assert_nothing_made(fal)


@pytest.mark.parametrize("status", ["training", "draft"])
def test_two_character_untrained_character_is_422_by_lora(alice_client, user, pair, fal, status):
    a, _ = pair
    pending = untrained(user, status)
    assert not pending.lora_url
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {"character_a_id": str(a.public_id), "character_b_id": str(pending.public_id),
         "method": "lora"},  # issue 17: the default would be reference mode
    )
    assert response.status_code == 422
    assert "학습이 끝나지 않은" in response.json()["detail"]
    _assert_nothing_made(fal)


def test_two_character_active_character_without_lora_url_is_422(alice_client, pair, fal):
    a, b = pair
    Character.objects.filter(pk=b.pk).update(lora_url="")
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {"character_a_id": str(a.public_id), "character_b_id": str(b.public_id),
         "method": "lora"},
    )
    assert response.status_code == 422
    _assert_nothing_made(fal)


def test_two_character_third_character_is_422(alice_client, user, pair, fal):
    a, b = pair
    c = trained_character(user, name="최과장")
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {
            "character_a_id": str(a.public_id),
            "character_b_id": str(b.public_id),
            "character_c_id": str(c.public_id),
        },
    )
    assert response.status_code == 422
    assert "3명 이상은 지원하지 않습니다" in response.json()["detail"]
    _assert_nothing_made(fal)


@pytest.mark.parametrize(
    "scales", [{"lora_scale_a": 0.05}, {"lora_scale_b": 1.6}, {"lora_scale_a": 0.0}]
)
def test_two_character_scale_out_of_range_is_422(alice_client, pair, fal, scales):
    a, b = pair
    response = api(
        alice_client,
        "post",
        "generate-two-characters",
        {"character_a_id": str(a.public_id), "character_b_id": str(b.public_id), **scales},
    )
    assert response.status_code == 422
    assert "0.1~1.5" in response.json()["detail"]
    _assert_nothing_made(fal)


def test_two_character_page_errors_are_shown_and_create_nothing(alice_client, pair, fal):
    a, _ = pair
    html = alice_client.post(
        "/scenes/two/",
        {"character_a": str(a.public_id), "character_b": str(a.public_id)},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-testid="scene-error"' in html and "같은 캐릭터" in html
    _assert_nothing_made(fal)


# --- expired LoRA URLs (SPEC §11.3) ---------------------------------------------------------------
def test_expired_lora_url_is_reuploaded_and_the_scene_still_succeeds(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    old_url = fal.add_file("old-lora.safetensors", b"x")
    character = trained_character(user, lora_url=old_url)
    fal.expire(old_url)
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(character.public_id),
        expression="미소",
    )
    assert response.status_code == 202
    sent = [r.arguments["loras"][0]["path"] for r in fal.submitted(LORA)]
    assert len(sent) == 2 and sent[0] == old_url
    character.refresh_from_db()
    assert sent[1] == character.lora_url != old_url
    assert character.current_version.lora_url == character.lora_url
    scene = Scene.objects.get()
    assert scene.image and not scene.error
    assert scene.cast.get().lora_url == sent[1]
    assert api(alice_client, "get", str(scene.public_id)).json()["status"] == "completed"


def test_expired_lora_url_of_one_of_two_characters_is_recovered(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    old_url = fal.add_file("old-b.safetensors", b"x")
    a = trained_character(user, name="김대리", lora_url=fal.add_file("a.safetensors", b"a"))
    b = trained_character(user, name="이부장", lora_url=old_url)
    fal.expire(old_url)
    generate_two(
        alice_client,
        django_capture_on_commit_callbacks,
        character_a_id=str(a.public_id),
        character_b_id=str(b.public_id),
    )
    first, second = (r.arguments["loras"] for r in fal.submitted(LORA))
    b.refresh_from_db()
    assert first[1]["path"] == old_url and second[1]["path"] == b.lora_url != old_url
    assert second[0] == first[0] == {"path": a.lora_url, "scale": 0.8}
    scene = Scene.objects.get()
    assert scene.image
    assert [c.lora_url for c in scene.cast.all()] == [a.lora_url, b.lora_url]


def test_expired_lora_url_without_our_copy_fails_the_scene_with_the_restore_message(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    old_url = fal.add_file("old-lora.safetensors", b"x")
    character = trained_character(user, lora_url=old_url)
    character.current_version.lora_file = ""
    character.current_version.save()
    Character.objects.filter(pk=character.pk).update(lora_file="")
    fal.expire(old_url)
    response = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(character.public_id),
        expression="미소",
    )
    scene = api(alice_client, "get", response.json()["scene_id"]).json()
    assert scene["status"] == "failed"
    assert scene["error"] == "LoRA 파일이 만료되었습니다. 백업에서 복원해주세요."
    assert len(fal.submitted(LORA)) == 1


# --- the gallery --------------------------------------------------------------------------------
def test_gallery_lists_newest_first_and_filters_by_character(
    alice_client, pair, offline, django_capture_on_commit_callbacks
):
    a, b = pair
    capture = django_capture_on_commit_callbacks
    first = generate_one(alice_client, capture, character_id=str(a.public_id), expression="미소")
    second = generate_two(
        alice_client, capture, character_a_id=str(a.public_id), character_b_id=str(b.public_id)
    )
    third = generate_one(alice_client, capture, character_id=None, location="공원")
    ids = [r.json()["scene_id"] for r in (first, second, third)]

    listed = api(alice_client, "get", "list").json()
    assert [s["scene_id"] for s in listed] == ids[::-1]
    only_a = api(alice_client, "get", f"list?character_id={a.public_id}").json()
    assert [s["scene_id"] for s in only_a] == [ids[1], ids[0]]
    only_b = api(alice_client, "get", f"list?character_id={b.public_id}").json()
    assert [s["scene_id"] for s in only_b] == [ids[1]]
    assert len(only_b[0]["characters"]) == 2  # the filter does not hide the co-star

    page = alice_client.get(f"/scenes/?filter={b.public_id}").content.decode()
    assert page.count('data-testid="scene"') == 1 and ids[1] in page


def test_gallery_does_not_list_another_users_scenes(
    alice_client, client, user, other_user, boss, offline, django_capture_on_commit_callbacks
):
    generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    )
    client.force_login(other_user)
    assert api(client, "get", "list").json() == []
    assert 'data-testid="scene"' not in client.get("/scenes/").content.decode()


def test_regenerate_makes_a_new_scene_with_a_new_seed_and_the_same_settings(
    alice_client, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    old = generate_two(
        alice_client,
        django_capture_on_commit_callbacks,
        character_a_id=str(a.public_id),
        character_b_id=str(b.public_id),
        lora_scale_a=0.75,
        lora_scale_b=0.65,
        location="은행",
    ).json()
    # B is retrained meanwhile: the regenerated scene still uses the version it was made with.
    v2 = CharacterVersion.objects.create(
        character=b,
        number=2,
        lora_url="https://v3.fal.media/files/b-v2.st",
        lora_file=b.lora_file.name,
        training_images_count=3,
    )
    Character.objects.filter(pk=b.pk).update(current_version=v2, lora_url=v2.lora_url)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice_client, "post", f"{old['scene_id']}/regenerate")
    assert response.status_code == 202
    new = api(alice_client, "get", response.json()["scene_id"]).json()
    assert new["scene_id"] != old["scene_id"] and new["status"] == "completed"
    assert new["prompt"] == old["prompt"] and new["seed"] != old["seed"]
    assert [(c["trigger_word"], c["version"], c["scale"]) for c in new["characters"]] == [
        (a.trigger_word, 1, 0.75),
        (b.trigger_word, 1, 0.65),
    ]
    first, again = (r.arguments for r in fal.submitted(LORA))
    assert again["seed"] != first["seed"]
    assert again["loras"][1]["path"] == "https://v3.fal.media/files/b.st"  # v1, not v2
    assert {k: v for k, v in again.items() if k != "seed"} == {
        k: v for k, v in first.items() if k != "seed"
    }
    assert Scene.objects.count() == 2


def test_regenerate_from_the_page_adds_the_new_scene(
    alice_client, boss, offline, django_capture_on_commit_callbacks
):
    old = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(f"/scenes/{old['scene_id']}/regenerate/").content.decode()
    assert 'data-testid="scene"' in html and old["scene_id"] not in html
    assert Scene.objects.count() == 2


def test_delete_removes_the_scene_and_its_image(
    alice_client, boss, offline, django_capture_on_commit_callbacks
):
    created = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    ).json()
    scene = Scene.objects.get()
    name = scene.image.name
    assert name and default_storage.exists(name)
    assert api(alice_client, "delete", created["scene_id"]).status_code == 204
    assert not Scene.objects.exists() and not default_storage.exists(name)
    assert api(alice_client, "get", created["scene_id"]).status_code == 404
    assert api(alice_client, "get", "list").json() == []


def test_delete_from_the_page_removes_the_scene_and_its_image(
    alice_client, boss, offline, django_capture_on_commit_callbacks
):
    generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    )
    scene = Scene.objects.get()
    response = alice_client.post(f"/scenes/{scene.public_id}/delete/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "씬을 삭제했습니다." in response.content.decode()
    assert not Scene.objects.exists() and not default_storage.exists(scene.image.name)


def test_another_users_scene_is_404_everywhere(
    alice_client, client, other_user, boss, offline, django_capture_on_commit_callbacks
):
    created = generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    ).json()
    sid = created["scene_id"]
    client.force_login(other_user)
    assert api(client, "get", sid).status_code == 404
    assert api(client, "post", f"{sid}/regenerate").status_code == 404
    assert api(client, "delete", sid).status_code == 404
    assert client.get(f"/scenes/{sid}/").status_code == 404
    assert client.post(f"/scenes/{sid}/regenerate/").status_code == 404
    assert client.post(f"/scenes/{sid}/delete/").status_code == 404
    assert Scene.objects.count() == 1 and Scene.objects.get().image


def test_another_users_character_is_404_when_generating(alice_client, user, other_user, offline):
    theirs = trained_character(other_user, name="남의 캐릭터")
    mine = trained_character(user, name="내 캐릭터")
    one = api(
        alice_client,
        "post",
        "generate-with-character",
        {"character_id": str(theirs.public_id), "expression": "미소"},
    )
    assert one.status_code == 404
    for a, b in ((theirs, mine), (mine, theirs)):
        two = api(
            alice_client,
            "post",
            "generate-two-characters",
            {"character_a_id": str(a.public_id), "character_b_id": str(b.public_id)},
        )
        assert two.status_code == 404
    assert (
        alice_client.post(
            "/scenes/one/", {"character": str(theirs.public_id), "expression": "미소"}
        ).status_code
        == 404
    )
    assert not Scene.objects.exists() and not Job.objects.exists()


# --- the offline backend ------------------------------------------------------------------------
def test_offline_backend_makes_a_scene_image_end_to_end(
    alice_client, boss, offline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            "/scenes/one/",
            {
                "character": str(boss.public_id),
                "lora_scale": "0.8",
                "expression": "웃으며 설명",
                "location": "사무실",
                "situation": "세금 신고를 설명하는",
                "image_size": "portrait_4_3",
            },
            HTTP_HX_REQUEST="true",
        ).content.decode()
    assert 'data-testid="scene"' in html
    scene = Scene.objects.get()
    assert scene.image and scene.job.state == "succeeded"
    item = alice_client.get(f"/scenes/{scene.public_id}/").content.decode()
    assert 'data-status="completed"' in item and "<img" in item
    assert f"A: {boss.trigger_word} v1 @ 0.8" in item
    image = alice_client.get(re.search(r'<img src="([^"]+)"', item).group(1))
    assert image.status_code == 200 and image["Content-Type"].startswith("image/")


# --- the scene page -----------------------------------------------------------------------------
def test_scene_page_dropdown_lists_trained_characters_then_prompt_mode_and_new(
    alice_client, user, other_user, pair
):
    a, b = pair
    Character.objects.filter(pk=b.pk).update(style_id="chibi_2head")
    gone = trained_character(user, name="삭제됨")
    Character.objects.filter(pk=gone.pk).update(status="deleted")
    untrained(user, "training")
    trained_character(other_user, name="남의 캐릭터")
    page = alice_client.get("/scenes/").content.decode()
    select = re.search(
        r'<select name="character" data-testid="character-select".*?</select>', page, re.S
    ).group(0)
    options = [
        " ".join(o.split()) for o in re.findall(r"<option[^>]*>(.*?)</option>", select, re.S)
    ]
    assert options == [
        "📷 김대리",
        "🧸 이부장",
        "──────────",
        "학습 안 됨 (프롬프트 모드)",
        "+ 새 캐릭터 학습",
    ]
    assert "/characters/new/" in select


def test_scene_page_without_characters_selects_prompt_mode_and_shows_limits(alice_client):
    page = alice_client.get("/scenes/").content.decode()
    assert re.search(r'<option value="" selected>\s*학습 안 됨 \(프롬프트 모드\)', page)
    assert "+ 새 캐릭터 학습" in page
    assert "학습된 캐릭터가 2명 이상 있어야 합니다." in page


@pytest.mark.parametrize("count", [0, 1, 2])
def test_scene_page_always_shows_the_two_character_limits(alice_client, user, count):
    for i in range(count):
        trained_character(user, name=f"캐릭터 {i}")
    page = alice_client.get("/scenes/").content.decode()
    for line in (
        "두 캐릭터를 함께 그리면 각 캐릭터의 특징이 약해질 수 있습니다.",
        "강도는 각각 0.6~0.8, 합계 1.5 이하를 권장합니다.",
        "닮은 캐릭터끼리는 서로 섞일 수 있으니 옷이나 머리 색으로 구분해주세요.",
        "3명 이상은 지원하지 않습니다.",
    ):
        assert line in page


def test_scene_page_preselects_the_character_from_its_link_with_its_scale(alice_client, user, pair):
    a, b = pair
    Character.objects.filter(pk=b.pk).update(lora_scale_default=1.1)
    page = alice_client.get(f"/scenes/?character={b.public_id}").content.decode()
    assert re.search(rf'<option value="{b.public_id}"[^>]*selected', page)
    assert re.search(r'id="one-scale"[^>]*value="1.1"', page)
    assert '<output id="one-scale-value">1.10</output>' in page


def test_scene_page_with_a_stale_filter_shows_all_scenes(
    alice_client, boss, offline, django_capture_on_commit_callbacks
):
    generate_one(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
    )
    response = alice_client.get("/scenes/?filter=not-an-id")
    assert response.status_code == 200
    assert response.content.decode().count('data-testid="scene"') == 1


@pytest.mark.parametrize("value", ["__new__", "not-an-id"])
def test_scene_form_with_a_value_that_is_no_character_shows_a_message(
    alice_client, boss, fal, value
):
    one = alice_client.post(
        "/scenes/one/", {"character": value, "expression": "미소"}, HTTP_HX_REQUEST="true"
    )
    two = alice_client.post(
        "/scenes/two/",
        {"character_a": str(boss.public_id), "character_b": value},
        HTTP_HX_REQUEST="true",
    )
    for response in (one, two):
        assert response.status_code == 200
        assert "캐릭터를 다시 골라주세요." in response.content.decode()
    _assert_nothing_made(fal)


def test_scene_page_needs_login(client):
    response = client.get("/scenes/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_gallery_page_costs_the_same_queries_for_one_scene_or_many(
    alice_client, pair, offline, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a, b = pair
    capture = django_capture_on_commit_callbacks
    generate_two(
        alice_client, capture, character_a_id=str(a.public_id), character_b_id=str(b.public_id)
    )
    with CaptureQueriesContext(connection) as one:
        assert alice_client.get("/scenes/").status_code == 200
    for _ in range(3):
        generate_two(
            alice_client, capture, character_a_id=str(a.public_id), character_b_id=str(b.public_id)
        )
    with CaptureQueriesContext(connection) as four:
        page = alice_client.get("/scenes/").content.decode()
    assert page.count('data-testid="scene"') == 4
    assert len(four) == len(one)  # each scene's cast and LoRA versions come prefetched
