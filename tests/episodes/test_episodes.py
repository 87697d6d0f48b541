"""Episodes: style presets with character LoRAs, panels and their order, text elements, owner
scoping, and the scene page's "이 씬을 에피소드에 추가"."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from episodes import services
from episodes.models import Bubble, Episode, Panel, StylePreset
from scenes.models import Scene
from tests.characters.factories import trained_character
from tests.episodes.helpers import LORA, api, episode, picture, upload, uploaded_panel
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db

WEBTOON = "korean webtoon style, clean line art, vibrant cel shading, full color"
MANGA = "black and white manga style, monochrome ink drawing, screentone shading"


@pytest.fixture
def boss(user):
    return trained_character(user, name="박사장")


@pytest.fixture
def pair(user):
    a = trained_character(user, name="김대리", lora_url="https://v3.fal.media/files/a.st")
    b = trained_character(user, name="이부장", lora_url="https://v3.fal.media/files/b.st")
    return a, b


def generate(client, capture, ep, **body):
    with capture(execute=True):
        return api(client, "post", f"{ep.public_id}/panels/generate", body)


# --- presets -------------------------------------------------------------------------------------
def test_the_four_presets_are_seeded_as_editable_data(alice_client):
    response = api(alice_client, "get", "presets")
    assert response.status_code == 200
    names = [p["name"] for p in response.json()]
    assert names == ["웹툰 컬러", "흑백 만화", "수채화", "플랫 일러스트"]
    StylePreset.objects.filter(slug="flat").update(keywords="paper cutout style", name="종이 공작")
    presets = {p["id"]: p for p in api(alice_client, "get", "presets").json()}
    assert presets["flat"]["keywords"] == "paper cutout style"
    assert presets["flat"]["name"] == "종이 공작"


def test_inactive_preset_is_not_offered_nor_accepted(alice_client):
    StylePreset.objects.filter(slug="watercolor").update(is_active=False)
    assert "watercolor" not in [p["id"] for p in api(alice_client, "get", "presets").json()]
    response = api(alice_client, "post", "", {"title": "x", "preset_id": "watercolor"})
    assert response.status_code == 422 and Episode.objects.count() == 0


# --- preset keywords + LoRAs in every panel's prompt ---------------------------------------------
def test_every_generated_panel_sends_the_preset_keywords_and_the_lora(
    alice_client, user, boss, fal, django_capture_on_commit_callbacks
):
    ep = episode(user)
    response = generate(
        alice_client, django_capture_on_commit_callbacks, ep,
        character_ids=[str(boss.public_id)], expression="웃으며 설명", location="사무실",
        situation="세금 신고를 설명하는", count=3,
    )
    assert response.status_code == 202
    assert [p["number"] for p in response.json()] == [1, 2, 3]
    sent = [r.arguments for r in fal.submitted(LORA)]
    assert len(sent) == 3
    for arguments in sent:
        assert arguments["prompt"] == (
            f"{boss.trigger_word}, smiling while explaining, office, explaining a tax filing, "
            f"{WEBTOON}"
        )
        assert arguments["loras"] == [{"path": boss.lora_url, "scale": 0.8}]
        assert arguments["image_size"] == "portrait_4_3"
        assert arguments["num_inference_steps"] == 28
    assert len({a["seed"] for a in sent}) == 3  # three different pictures of one look
    detail = api(alice_client, "get", str(ep.public_id)).json()
    assert [p["status"] for p in detail["panels"]] == ["ready"] * 3
    assert all(p["prompt"].endswith(WEBTOON) for p in detail["panels"])
    assert all(p["display_height"] == 1067 for p in detail["panels"])


def test_two_character_panel_sends_both_loras_and_the_preset_keywords(
    alice_client, user, pair, fal, django_capture_on_commit_callbacks
):
    a, b = pair
    ep = episode(user, preset="manga-bw")
    response = generate(
        alice_client, django_capture_on_commit_callbacks, ep,
        character_ids=[str(a.public_id), str(b.public_id)], location="회의실",
        expression="질문하는", b_expression="웃으며 설명",
    )
    assert response.status_code == 202
    (arguments,) = [r.arguments for r in fal.submitted(LORA)]
    ta, tb = a.trigger_word, b.trigger_word
    assert arguments["prompt"] == (
        f"{ta} and {tb}, two people in meeting room, {ta} is asking a question, curious "
        f"expression, {tb} is smiling while explaining, {MANGA}"
    )
    assert arguments["loras"] == [{"path": a.lora_url, "scale": 0.8},
                                  {"path": b.lora_url, "scale": 0.7}]
    assert arguments["image_size"] == "landscape_16_9"
    assert response.json()[0]["display_height"] == 450


def test_prompt_mode_panel_sends_the_keywords_without_a_lora(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    ep = episode(user, preset="watercolor")
    generate(alice_client, django_capture_on_commit_callbacks, ep, location="카페",
             expression="놀람")
    (arguments,) = [r.arguments for r in fal.submitted(LORA)]
    assert "loras" not in arguments
    assert arguments["prompt"] == (
        "surprised expression, cafe, soft watercolor illustration, pastel colors, paper texture, "
        "gentle brush strokes"
    )


def test_a_new_preset_applies_to_panels_made_after_the_change(
    alice_client, user, boss, fal, django_capture_on_commit_callbacks
):
    ep = episode(user)
    body = {"character_ids": [str(boss.public_id)], "expression": "미소"}
    generate(alice_client, django_capture_on_commit_callbacks, ep, **body)
    assert api(alice_client, "patch", str(ep.public_id), {"preset_id": "manga-bw"}).json()[
        "preset"]["name"] == "흑백 만화"
    generate(alice_client, django_capture_on_commit_callbacks, ep, **body)
    api(alice_client, "patch", str(ep.public_id), {"preset_id": None})
    generate(alice_client, django_capture_on_commit_callbacks, ep, **body)
    prompts = [r.arguments["prompt"] for r in fal.submitted(LORA)]
    assert prompts == [
        f"{boss.trigger_word}, gentle smile, {WEBTOON}",
        f"{boss.trigger_word}, gentle smile, {MANGA}",
        f"{boss.trigger_word}, gentle smile",
    ]
    assert all(r.arguments["loras"][0]["path"] == boss.lora_url for r in fal.submitted(LORA))


def test_three_characters_in_a_panel_are_refused(alice_client, user, pair, fal):
    a, b = pair
    c = trained_character(user, name="최과장")
    ep = episode(user)
    response = api(alice_client, "post", f"{ep.public_id}/panels/generate",
                   {"character_ids": [str(a.public_id), str(b.public_id), str(c.public_id)]})
    assert response.status_code == 422
    assert "3명 이상은 지원하지 않습니다" in response.json()["detail"]
    assert not Panel.objects.exists() and not Scene.objects.exists() and fal.submitted() == []


def test_another_users_character_cannot_be_used_in_my_episode(
    alice_client, user, other_user, fal
):
    theirs = trained_character(other_user, name="남의 캐릭터")
    ep = episode(user)
    response = api(alice_client, "post", f"{ep.public_id}/panels/generate",
                   {"character_ids": [str(theirs.public_id)]})
    assert response.status_code == 404
    assert not Panel.objects.exists() and not Job.objects.exists()


# --- panel order ---------------------------------------------------------------------------------
def _order(client, ep) -> list[str]:
    return [p["panel_id"] for p in api(client, "get", str(ep.public_id)).json()["panels"]]


def test_panels_keep_their_order_through_moves_reorders_and_deletes(alice_client, user):
    ep = episode(user)
    p1, p2, p3, p4 = (str(uploaded_panel(user, ep).public_id) for _ in range(4))
    assert _order(alice_client, ep) == [p1, p2, p3, p4]

    assert api(alice_client, "post", f"panel/{p1}/move", {"offset": 1}).json()["number"] == 2
    assert _order(alice_client, ep) == [p2, p1, p3, p4]
    api(alice_client, "post", f"panel/{p4}/move", {"offset": -1})
    assert _order(alice_client, ep) == [p2, p1, p4, p3]
    api(alice_client, "post", f"panel/{p3}/move", {"offset": 1})  # already last: stays
    assert _order(alice_client, ep) == [p2, p1, p4, p3]

    response = api(alice_client, "put", f"{ep.public_id}/panels/order",
                   {"panel_ids": [p3, p4, p1, p2]})
    assert response.status_code == 200
    assert [(p["panel_id"], p["number"]) for p in response.json()] == [
        (p3, 1), (p4, 2), (p1, 3), (p2, 4)
    ]
    assert api(alice_client, "delete", f"panel/{p4}").status_code == 204
    assert _order(alice_client, ep) == [p3, p1, p2]
    assert list(ep.panels.order_by("position").values_list("position", flat=True)) == [1, 2, 3]


@pytest.mark.parametrize("which", ["missing", "repeated", "foreign"])
def test_reorder_must_name_every_panel_once(alice_client, user, other_user, which):
    ep = episode(user)
    ids = [str(uploaded_panel(user, ep).public_id) for _ in range(3)]
    other = uploaded_panel(other_user, episode(other_user))
    bad = {"missing": ids[:2], "repeated": [ids[0], ids[0], ids[1]],
           "foreign": [ids[0], ids[1], str(other.public_id)]}[which]
    response = api(alice_client, "put", f"{ep.public_id}/panels/order", {"panel_ids": bad})
    assert response.status_code == 422
    assert _order(alice_client, ep) == ids


def test_deleting_a_panel_keeps_the_gallery_scene(alice_client, user, boss, fal,
                                                 django_capture_on_commit_callbacks):
    ep = episode(user)
    (panel,) = generate(alice_client, django_capture_on_commit_callbacks, ep,
                        character_ids=[str(boss.public_id)], expression="미소").json()
    api(alice_client, "delete", f"panel/{panel['panel_id']}")
    assert not Panel.objects.exists()
    assert Scene.objects.get().image


def test_panel_height_is_chosen_or_automatic(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep, size=(1000, 500))
    detail = api(alice_client, "get", f"panel/{panel.public_id}").json()
    assert detail["height"] is None and detail["display_height"] == 400
    response = api(alice_client, "patch", f"panel/{panel.public_id}", {"height": 900})
    assert response.json()["height"] == 900 and response.json()["display_height"] == 900
    assert api(alice_client, "patch", f"panel/{panel.public_id}", {"height": 50}).status_code == 422
    assert api(alice_client, "patch", f"panel/{panel.public_id}",
               {"height": None}).json()["display_height"] == 400


# --- uploads -------------------------------------------------------------------------------------
def test_upload_panel_is_checked_and_re_encoded_like_a_photo(alice_client, user):
    ep = episode(user)
    response = alice_client.post(f"/api/episode/{ep.public_id}/panels/upload",
                                 {"image": upload(size=(640, 480))})
    assert response.status_code == 201
    body = response.json()
    assert body["source"] == "upload" and body["status"] == "ready"
    assert body["display_height"] == 600
    image = alice_client.get(body["image_url"])
    assert image["Content-Type"] == "image/jpeg"


def test_upload_that_is_not_an_image_is_refused(alice_client, user):
    ep = episode(user)
    fake = SimpleUploadedFile("x.png", b"<?php echo 1; ?>" * 10, content_type="image/png")
    response = alice_client.post(f"/api/episode/{ep.public_id}/panels/upload", {"image": fake})
    assert response.status_code == 415
    assert response.json()["detail"] == "JPG, PNG, WEBP만 지원합니다"
    gif = SimpleUploadedFile("x.gif", picture(fmt="GIF"), content_type="image/gif")
    response = alice_client.post(f"/api/episode/{ep.public_id}/panels/upload", {"image": gif})
    assert response.status_code == 415
    assert not Panel.objects.exists()


# --- text elements -------------------------------------------------------------------------------
def test_bubbles_are_created_edited_and_deleted(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    response = api(alice_client, "post", f"panel/{panel.public_id}/bubbles",
                   {"kind": "speech", "text": "세금 신고는 5월까지예요!"})
    assert response.status_code == 201
    bubble = response.json()
    assert bubble["tail_x"] is not None and bubble["fit"]["fits"]
    assert bubble["fit"]["lines"] == ["세금 신고는", "5월까지예요!"]  # wrapped at the space
    bid = bubble["bubble_id"]

    moved = api(alice_client, "patch", f"bubble/{bid}",
                {"x": 0.9, "y": 0.5, "w": 0.3, "h": 0.15, "tail_x": 0.2, "tail_y": 0.95}).json()
    # Kept inside the panel: x + w never passes the right edge.
    assert (moved["x"], moved["y"], moved["w"], moved["h"]) == pytest.approx((0.7, 0.5, 0.3, 0.15))
    assert (moved["tail_x"], moved["tail_y"]) == (0.2, 0.95)
    assert moved["text"] == "세금 신고는 5월까지예요!"
    no_tail = api(alice_client, "patch", f"bubble/{bid}", {"tail_x": None, "tail_y": None})
    assert no_tail.json()["tail_x"] is None
    narration = api(alice_client, "patch", f"bubble/{bid}", {"kind": "narration"}).json()
    assert narration["kind"] == "narration" and narration["tail_x"] is None

    for kind in ("thought", "narration", "caption"):
        made = api(alice_client, "post", f"panel/{panel.public_id}/bubbles", {"kind": kind})
        assert made.status_code == 201 and made.json()["kind"] == kind
    assert api(alice_client, "delete", f"bubble/{bid}").status_code == 204
    kinds = [b["kind"] for b in api(alice_client, "get", str(ep.public_id)).json()["panels"][0][
        "bubbles"]]
    assert kinds == ["thought", "narration", "caption"]


def test_bubble_reports_a_shrunk_font_and_text_that_does_not_fit(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    long = "환급 예상액은 ₩1,234,567입니다. 증빙 서류를 모두 챙겨서 다음 주 화요일까지 보내주세요."
    shrunk = api(alice_client, "post", f"panel/{panel.public_id}/bubbles",
                 {"kind": "speech", "text": long, "w": 0.5, "h": 0.22}).json()
    assert shrunk["fit"]["fits"] and shrunk["fit"]["font_size"] < 26
    assert "줄였습니다" in shrunk["fit"]["note"] or "작아졌습니다" in shrunk["fit"]["note"]
    assert any("₩1,234,567입니다." in line for line in shrunk["fit"]["lines"])
    cut = api(alice_client, "post", f"panel/{panel.public_id}/bubbles",
              {"kind": "speech", "text": long * 4, "w": 0.2, "h": 0.06}).json()
    assert not cut["fit"]["fits"] and "다 들어가지 않아" in cut["fit"]["note"]
    assert cut["fit"]["warning"] and cut["fit"]["font_size"] == 18


@pytest.mark.parametrize(
    "body", [{"kind": "balloon"}, {"kind": "speech", "font_size": 200},
             {"kind": "speech", "font_size": 17},
             {"kind": "speech", "x": 1.5}, {"kind": "speech", "text": "가" * 501}],
)
def test_bad_bubbles_are_refused(alice_client, user, body):
    panel = uploaded_panel(user, episode(user))
    response = api(alice_client, "post", f"panel/{panel.public_id}/bubbles", body)
    assert response.status_code == 422
    assert not Bubble.objects.exists()


# --- owner scoping -------------------------------------------------------------------------------
def test_another_users_episode_panel_bubble_and_export_are_404(client, user, other_user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    bubble = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech", text="내꺼")
    client.force_login(other_user)
    e, p, b = ep.public_id, panel.public_id, bubble.public_id
    checks = [
        ("get", f"{e}", None), ("patch", f"{e}", {"title": "뺏기"}), ("delete", f"{e}", None),
        ("post", f"{e}/panels/generate", {}), ("post", f"{e}/export", {}),
        ("put", f"{e}/panels/order", {"panel_ids": [str(p)]}),
        ("get", f"panel/{p}", None), ("patch", f"panel/{p}", {"height": 500}),
        ("post", f"panel/{p}/move", {"offset": 1}), ("delete", f"panel/{p}", None),
        ("post", f"panel/{p}/bubbles", {"kind": "speech"}),
        ("patch", f"bubble/{b}", {"text": "뺏기"}), ("delete", f"bubble/{b}", None),
    ]
    for method, path, body in checks:
        response = api(client, method, path, body)
        assert response.status_code == 404, (method, path, response.content)
    assert api(client, "get", "").json() == []
    pages = [f"/episodes/{e}/", f"/episodes/panel/{p}/preview.png"]
    assert [client.get(url).status_code for url in pages] == [404, 404]
    posts = [f"/episodes/{e}/update/", f"/episodes/panel/{p}/delete/",
             f"/episodes/bubble/{b}/", f"/episodes/{e}/export/", f"/episodes/{e}/delete/"]
    assert [client.post(url, {"text": "x"}).status_code for url in posts] == [404] * 5
    bubble.refresh_from_db()
    assert bubble.text == "내꺼" and Panel.objects.filter(pk=panel.pk).exists()
    assert Episode.objects.get().title == "1화 종합소득세"


def test_a_scene_of_another_user_cannot_be_added(alice_client, user, other_user, fal,
                                                 django_capture_on_commit_callbacks):
    scene = _scene(other_user, trained_character(other_user), django_capture_on_commit_callbacks)
    ep = episode(user)
    response = api(alice_client, "post", f"{ep.public_id}/panels/from-scene",
                   {"scene_id": str(scene.public_id)})
    assert response.status_code == 404
    assert alice_client.post(f"/episodes/add-scene/{scene.public_id}/").status_code == 404
    assert not Panel.objects.exists() and Episode.objects.count() == 1


def test_episode_list_is_only_mine_and_newest_first(alice_client, user, other_user):
    episode(other_user, title="남의 것")
    first = episode(user, title="1화")
    episode(user, title="2화")
    uploaded_panel(user, first)  # editing an episode brings it to the top
    assert [e["title"] for e in api(alice_client, "get", "").json()] == ["1화", "2화"]


# --- the scene page ------------------------------------------------------------------------------
def _scene(user, character, capture):
    from scenes import services as scenes

    with capture(execute=True):
        return scenes.generate_with_character(
            owner=user, character_id=character.public_id, expression="미소"
        )


def test_scene_page_adds_scenes_to_a_new_then_the_same_episode(
    alice_client, user, boss, fal, django_capture_on_commit_callbacks
):
    scenes = [_scene(user, boss, django_capture_on_commit_callbacks) for _ in range(3)]
    page = alice_client.get("/scenes/").content.decode()
    assert page.count('data-testid="add-to-episode"') == 3
    assert "이 씬을 에피소드에 추가" in page

    picker = alice_client.get("/episodes/scene-picker/").content.decode()
    assert 'value="new" selected' in picker  # no episode yet

    html = alice_client.post(f"/episodes/add-scene/{scenes[0].public_id}/",
                             {"episode": "new"}).content.decode()
    ep = Episode.objects.get()
    assert "1번째 컷으로 추가했습니다" in html and ep.title == "새 에피소드 1"
    assert ep.preset.name == "웹툰 컬러"
    # The picker comes back out of band with the new episode chosen for the next click.
    assert 'hx-swap-oob="true"' in html
    assert f'value="{ep.public_id}" selected' in html
    for scene in scenes[1:]:
        html = alice_client.post(f"/episodes/add-scene/{scene.public_id}/",
                                 {"episode": str(ep.public_id)}).content.decode()
    assert "3번째 컷으로 추가했습니다" in html
    assert [p.scene_id for p in ep.panels.order_by("position")] == [s.pk for s in scenes]
    # No choice at all: the episode edited last.
    alice_client.post(f"/episodes/add-scene/{scenes[0].public_id}/")
    assert Episode.objects.count() == 1 and ep.panels.count() == 4


def test_a_failed_scene_cannot_be_added(alice_client, user):
    scene = Scene.objects.create(owner=user, mode="prompt", prompt="x", image_size="square",
                                 steps=28, error="생성에 실패했습니다.")
    html = alice_client.post(f"/episodes/add-scene/{scene.public_id}/").content.decode()
    assert "실패한 씬은 추가할 수 없습니다" in html
    assert not Panel.objects.exists()
