"""Two characters without blending (issue 16): compose with both LoRAs, find the two faces,
repaint each one with only its own LoRA (fal-ai/flux-lora/inpainting), all on the fal path
(fal-client through the fake, which draws real faces for LoRA inference)."""

import io
from decimal import Decimal

import fal_client
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from characters import identity
from characters.models import Photo
from scenes.models import Scene
from tests.characters.factories import trained_character
from tests.characters.test_curation import TESTDATA
from webtoon.imaging import RemoteRejected, get_backend
from webtoon.jobs.models import Job

pytestmark = pytest.mark.django_db

LORA = "fal-ai/flux-lora"
INPAINT = "fal-ai/flux-lora/inpainting"
SKIPPED = "인물 분리를 건너뛰었습니다 (얼굴 2개를 찾지 못함)"


def photo_of(owner, name: str) -> Photo:
    with Image.open(TESTDATA / name) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=95)
        size = im.size
    photo = Photo(owner=owner, width=size[0], height=size[1], source_format="JPEG",
                  consent_at=timezone.now(), face_detected=True)
    photo.image.save(f"u/{owner.pk}/photos/{name}.jpg", ContentFile(buf.getvalue()), save=False)
    photo.save()
    return photo


@pytest.fixture(autouse=True)
def _prices(settings):
    # Round prices per picture, so every figure below is easy to check by hand.
    settings.FAL_PRICES = {LORA: "0.04/image", INPAINT: "0.02/image"}


@pytest.fixture
def duo(user, fal):
    """A (the astronaut) and B (Grace Hopper): each LoRA draws its own person in the fake."""
    a = trained_character(user, name="김대리", lora_url="https://v3.fal.media/files/a.st")
    b = trained_character(user, name="이부장", lora_url="https://v3.fal.media/files/b.st")
    b.photo = photo_of(user, "grace_hopper.jpg")
    b.save(update_fields=["photo"])
    fal.lora_faces[b.lora_url] = "grace_hopper.jpg"
    return a, b


def two(client, capture, a, b, **extra):
    body = {"character_a_id": str(a.public_id), "character_b_id": str(b.public_id),
            "location": "사무실", "a_action": "질문하는", "b_action": "웃으며 설명", **extra}
    with capture(execute=True):
        return client.post("/api/scene/generate-two-characters", body,
                           content_type="application/json")


def fetch(fal, url) -> Image.Image:
    data, _type = fal.files[url.rsplit("/files/", 1)[-1]]
    return Image.open(io.BytesIO(data))


def test_separated_scene_composes_then_repaints_each_face_with_only_its_own_lora(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    assert response.status_code == 202
    assert response.json()["estimate"] == {
        "compose": 0.04, "inpaint_each": 0.02, "inpaint_count": 2, "total": 0.08,
        "total_krw": 112,
    }
    (compose,) = fal.submitted(LORA)
    assert compose.arguments["loras"] == [
        {"path": a.lora_url, "scale": 0.8}, {"path": b.lora_url, "scale": 0.7}
    ]
    assert compose.arguments["prompt"].startswith(f"{a.trigger_word} and {b.trigger_word}")
    first, second = fal.submitted(INPAINT)
    composed_url = fal.requests[compose.request_id].output["images"][0]["url"]
    first_url = fal.requests[first.request_id].output["images"][0]["url"]

    # A first: only A's LoRA at A's scale, A's trigger word, the composed picture, A's mask.
    assert first.arguments["loras"] == [{"path": a.lora_url, "scale": 0.8}]
    assert first.arguments["prompt"].startswith(f"{a.trigger_word}, ")
    assert b.trigger_word not in first.arguments["prompt"]
    assert first.arguments["image_url"] == composed_url
    assert first.arguments["strength"] == 0.85 and first.arguments["seed"] == compose.arguments[
        "seed"]
    # Then B, on A's result, with only B's LoRA and B's own mask.
    assert second.arguments["loras"] == [{"path": b.lora_url, "scale": 0.7}]
    assert second.arguments["prompt"].startswith(f"{b.trigger_word}, ")
    assert a.trigger_word not in second.arguments["prompt"]
    assert second.arguments["image_url"] == first_url
    assert first.arguments["mask_url"] != second.arguments["mask_url"]

    # Each mask is an uploaded greyscale picture, white over its own face only.
    left, right = identity.find_faces(fetch(fal, composed_url).convert("RGB"))[:2]
    left, right = sorted((left, right), key=lambda f: f.center_x)
    for mask_url, mine, other in ((first.arguments["mask_url"], left, right),
                                  (second.arguments["mask_url"], right, left)):
        mask = fetch(fal, mask_url)
        assert mask.mode == "L" and mask.size == (1024, 576)
        assert mask.getpixel((int(mine.center_x), (mine.top + mine.bottom) // 2)) == 255
        assert mask.getpixel((int(mine.center_x), max(0, mine.top - 5))) > 0  # the hair too
        assert mask.getpixel((int(other.center_x), (other.top + other.bottom) // 2)) == 0

    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert scene["status"] == "completed" and scene["separation"] == "done"
    assert [s["stage"] for s in scene["stages"]] == ["compose", "inpaint_a", "inpaint_b"]
    assert [s["arguments"] for s in scene["stages"]] == [
        compose.arguments, first.arguments, second.arguments
    ]
    assert [s["cost"] for s in scene["stages"]] == [0.04, 0.02, 0.02]
    for stage in scene["stages"]:  # every stage's picture is kept and served
        assert alice_client.get(stage["image_url"]).status_code == 200
    assert scene["image_url"] == scene["stages"][-1]["image_url"]
    assert SKIPPED not in scene["warnings"]
    # Identity per character: the face matched to each one is that character's person.
    assert [(c["role"], c["identity"]["verdict"]) for c in scene["characters"]] == [
        ("A", "same"), ("B", "same")
    ]
    assert scene["retry_suggested"] is False
    job = Job.objects.get(public_id=scene["task_id"])
    assert job.state == "succeeded"
    assert job.cost_estimated == job.cost_recorded == Decimal("0.080")


def test_separated_scene_without_two_faces_keeps_the_composed_image_and_pays_no_inpaint(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    fal.lora_faces[a.lora_url] = fal.lora_faces[b.lora_url] = "chelsea.png"  # a cat: no face
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    assert fal.submitted(INPAINT) == []
    (compose,) = fal.submitted(LORA)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert scene["status"] == "completed" and scene["separation"] == "skipped"
    assert SKIPPED in scene["warnings"]
    assert [s["stage"] for s in scene["stages"]] == ["compose"]
    assert scene["image_url"] == scene["stages"][0]["image_url"]
    assert [c["identity"]["verdict"] for c in scene["characters"]] == ["no_face", "no_face"]
    assert Job.objects.get(public_id=scene["task_id"]).cost_recorded == Decimal("0.040")
    page = alice_client.get("/scenes/").content.decode()
    assert SKIPPED in page and "얼굴을 찾지 못함" in page


def test_two_characters_with_separation_off_is_one_pass(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    response = two(alice_client, django_capture_on_commit_callbacks, a, b,
                   separate_identities=False)
    assert response.json()["estimate"]["total"] == 0.04
    assert len(fal.submitted(LORA)) == 1 and fal.submitted(INPAINT) == []
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert scene["separate_identities"] is False and scene["separation"] == ""
    assert scene["stages"] == [] and scene["status"] == "completed"
    # Even in one pass each character's face is found and measured.
    assert [c["identity"]["verdict"] for c in scene["characters"]] == ["same", "same"]


def test_a_character_that_came_out_different_is_offered_a_new_seed(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    del fal.lora_faces[b.lora_url]  # B's LoRA draws the astronaut, B's photo is Grace Hopper
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    verdicts = {c["role"]: c["identity"] for c in scene["characters"]}
    assert verdicts["A"]["verdict"] == "same"
    assert verdicts["B"]["verdict"] == "different" and verdicts["B"]["distance"] > 0.65
    assert scene["retry_suggested"] is True
    html = alice_client.get("/scenes/").content.decode()
    assert 'data-testid="retry-suggested"' in html and "다시 생성" in html
    assert "닮지 않음 · 낮음" in html

    with django_capture_on_commit_callbacks(execute=True):
        again = alice_client.post(f"/api/scene/{scene['scene_id']}/regenerate").json()
    assert again["seed"] != scene["seed"] and again["separate_identities"] is True
    assert len(fal.submitted(INPAINT)) == 4  # the new scene is separated again


def test_the_page_shows_the_cost_before_paying_and_its_box_turns_separation_off(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    html = alice_client.get("/scenes/").content.decode()
    assert 'name="separate_identities" checked' in html
    assert "예상 비용: 인물 분리 $0.08 (₩112) = 합성 $0.04 + 얼굴 다시 그리기 2 × $0.02" in html
    assert "분리 끄면 $0.04" in html
    assert alice_client.get(
        "/api/scene/estimate-two-characters?separate_identities=true"
    ).json()["total"] == 0.08
    form = {"character_a": str(a.public_id), "character_b": str(b.public_id),
            "separation_choice": "1"}  # the box left unticked
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/scenes/two/", form)
    assert Scene.objects.get().separate_identities is False
    assert fal.submitted(INPAINT) == []


def test_the_whole_estimate_counts_against_the_daily_cap_before_anything_is_made(
    alice_client, duo, fal, settings
):
    a, b = duo
    settings.DAILY_SPEND_CAP_USD = 0.06  # one pass ($0.04) fits, a separated one ($0.08) not
    response = two(alice_client, lambda **kw: _nothing(), a, b)
    assert response.status_code == 429
    assert not Scene.objects.exists() and fal.submitted() == []


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_separated_stages_show_on_demand_on_the_scene_page(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    two(alice_client, django_capture_on_commit_callbacks, a, b)
    html = alice_client.get("/scenes/").content.decode()
    assert 'data-testid="scene-stages"' in html and "<details" in html
    for label in ("1단계: 두 캐릭터 합성", "2단계: A 얼굴 다시 그리기",
                  "3단계: B 얼굴 다시 그리기"):
        assert label in html
    assert "인물 분리 완료" in html and "닮음 · 높음" in html


def test_inpainting_on_the_fake_needs_prompt_image_and_mask_like_fal(fal):
    client = fal_client.SyncClient(key="k")
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        client.submit(INPAINT, {"prompt": "p", "image_url": "https://v3.fal.media/files/x"})
    assert caught.value.status_code == 422
    assert [d["loc"] for d in caught.value.response.json()["detail"]] == [["body", "mask_url"]]
    with pytest.raises(RemoteRejected):
        get_backend("fal").submit(INPAINT, {"mask_url": "m", "image_url": "i"})


def test_an_episode_panel_showing_the_scene_carries_its_identity(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    scene_id = two(alice_client, django_capture_on_commit_callbacks, a, b).json()["scene_id"]
    episode = alice_client.post("/api/episode/", {"title": "1화"},
                                content_type="application/json").json()
    alice_client.post(f"/api/episode/{episode['episode_id']}/panels/from-scene",
                      {"scene_id": scene_id}, content_type="application/json")
    (panel,) = alice_client.get(f"/api/episode/{episode['episode_id']}").json()["panels"]
    assert [(i["role"], i["identity"]["verdict"], i["words"]) for i in panel["identity"]] == [
        ("A", "same", "닮음 · 높음 · 사진과 거의 같음"),
        ("B", "same", "닮음 · 높음 · 사진과 거의 같음"),
    ]


def test_support_sees_each_stage_of_a_separated_scene_in_the_back_office(
    client, user, duo, fal, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model

    a, b = duo
    client.force_login(user)
    scene_id = two(client, django_capture_on_commit_callbacks, a, b).json()["scene_id"]
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")
    client.force_login(admin)
    scene = Scene.objects.get(public_id=scene_id)
    page = client.get(f"/admin/scenes/scene/{scene.pk}/change/").content.decode()
    for stage in scene.stages:
        assert f"{stage['stage']} · call {stage['call']}" in page



def offline_lora(photo_name: str) -> str:
    """An offline-backend LoRA whose pictures show `photo_name` (what an offline training
    makes: the reference is the first training image)."""
    from webtoon.imaging.offline import SCHEME
    from webtoon.imaging.safetensors_file import build_safetensors

    backend = get_backend("offline")
    reference = backend.upload((TESTDATA / photo_name).read_bytes(), "image/png", photo_name)
    weights = build_safetensors({"w": [0.5] * 4},
                                {"offline_reference": reference[len(SCHEME):]})
    return backend.upload(weights, "application/octet-stream", "lora.safetensors")


def test_the_offline_backend_separates_two_offline_characters_too(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    a = trained_character(user, name="김대리", lora_url=offline_lora("astronaut.png"))
    b = trained_character(user, name="이부장", lora_url=offline_lora("grace_hopper.jpg"))
    b.photo = photo_of(user, "grace_hopper.jpg")
    b.save(update_fields=["photo"])
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert scene["separation"] == "done" and len(scene["stages"]) == 3
    assert [c["identity"]["verdict"] for c in scene["characters"]] == ["same", "same"]


def test_a_repaint_that_fails_for_good_leaves_the_last_good_picture_with_a_message(
    alice_client, duo, fal, django_capture_on_commit_callbacks, settings
):
    a, b = duo
    settings.GENERATION_MAX_ATTEMPTS = 1
    settings.GENERATION_TIMEOUT_SECONDS = 60  # a mistake here fails in a minute, not ten
    fal.fail("submit", endpoint=INPAINT, status=422, times=5,
             body={"detail": [{"loc": ["body", "mask_url"], "msg": "bad", "type": "value_error"}]},
             match=lambda args: (args.get("loras") or [{}])[0].get("path") == b.lora_url)
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert scene["status"] == "completed" and scene["separation"] == "failed"
    assert [s["stage"] for s in scene["stages"]] == ["compose", "inpaint_a"]
    assert scene["image_url"] == scene["stages"][-1]["image_url"]  # A repainted, B as composed
    assert "인물 분리 중 얼굴 다시 그리기에 실패했습니다. 합성 이미지를 보여드립니다." in (
        scene["warnings"])


def test_a_separated_scene_whose_job_ended_between_stages_still_shows_a_picture(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    from scenes import separation

    a, b = duo
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = Scene.objects.get(public_id=response.json()["scene_id"])
    Scene.objects.filter(pk=scene.pk).update(image="", separation="running")
    scene.stages = scene.stages[:1]
    scene.save(update_fields=["stages"])
    separation.job_finished(scene.job)
    scene.refresh_from_db()
    assert scene.image.name == scene.stages[0]["image"] and scene.separation == "failed"


def test_a_repaint_blacked_out_by_the_safety_checker_is_not_kept(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    fal.nsfw(endpoint=INPAINT, times=1)  # A's repaint comes back black and flagged
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert len(fal.submitted(INPAINT)) == 1  # B is not repainted on a black picture
    assert scene["separation"] == "failed" and scene["status"] == "completed"
    assert scene["image_url"] == scene["stages"][0]["image_url"]  # the composed picture


def test_masks_that_cannot_be_uploaded_keep_the_composed_picture_unpaid(
    alice_client, duo, fal, django_capture_on_commit_callbacks
):
    a, b = duo
    fal.fail("upload", status=500, times=100)  # fal's storage is down
    response = two(alice_client, django_capture_on_commit_callbacks, a, b)
    scene = alice_client.get(f"/api/scene/{response.json()['scene_id']}").json()
    assert fal.submitted(INPAINT) == []
    assert scene["separation"] == "skipped" and scene["status"] == "completed"
    assert "인물 분리를 건너뛰었습니다 (마스크를 올리지 못함)" in scene["warnings"]
