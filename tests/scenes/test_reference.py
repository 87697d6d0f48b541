"""Reference mode (issue 17): a character used right away, before (or without) training.

Scenes drawn by FAL_ENDPOINT_REFERENCE (fal-ai/flux-2/edit) from the character's best
curated cuts, on the fal path through the HTTP fake."""

import io
import re
import statistics

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image, ImageDraw

from characters.models import Character, CreationSession, Cut, Photo
from characters.prompts import base_cuts
from scenes.models import Scene, SceneCharacter
from tests.characters.factories import trained_character, training_zip
from webtoon.testing.fal_fake import TESTDATA

pytestmark = pytest.mark.django_db

EDIT = "fal-ai/flux-2/edit"
LORA = "fal-ai/flux-lora"
EXPLANATION = "학습 전에도 바로 사용 · 닮음 정도는 학습 후가 더 높을 수 있습니다"

# Identity of each curated cut against the photo (lower = closer). The choice must be: the
# best front view (19 beats 1), the best 3/4 (10 beats 9), the best profile (12 beats 11),
# then the best of the rest (2); never an unselected cut (3), one that failed the quality
# check (4) or one judged a different person (5) while better ones exist.
DISTANCES = {1: 0.30, 2: 0.05, 3: 0.01, 4: 0.02, 5: 0.70, 9: 0.35, 10: 0.15, 11: 0.40,
             12: 0.25, 19: 0.10}
CHOSEN = [19, 10, 12, 2]


def face_jpeg(face: str, number: int = 0) -> bytes:
    with Image.open(TESTDATA / face) as im:
        image = im.convert("RGB")
    # A mark per cut so every cut's bytes differ (which cut was sent is checkable).
    ImageDraw.Draw(image).rectangle((0, 0, 8, 8), fill=(number * 9 % 256, 40, 200))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def photo_of(owner, face: str) -> Photo:
    photo = Photo(owner=owner, width=512, height=512, source_format="JPEG",
                  consent_at=timezone.now(), face_detected=True)
    photo.image.save(f"u/{owner.pk}/photos/{face}.jpg", ContentFile(face_jpeg(face)), save=False)
    photo.save()
    return photo


def curated_character(owner, *, name="김대리", status="draft", face="astronaut.png",
                      with_cuts=True, with_photo=True, **fields) -> Character:
    """A character as prepare-training-data leaves it: photo, session, 24 curated cuts."""
    photo = photo_of(owner, face) if with_photo else None
    session = None
    if with_cuts:
        session = CreationSession.objects.create(owner=owner, photo=photo, style_id="original",
                                                 state="packaged")
        for t in base_cuts():
            distance = DISTANCES.get(t.id, 0.3 + t.id / 100)
            cut = Cut(
                session=session, number=t.id, template_id=t.id, category=t.category,
                pose_prompt=t.prompt, label_ko=t.label_ko, selected=t.id != 3,
                quality_ok=t.id != 4,
                identity={"distance": distance, "verdict": "different" if distance > 0.65
                          else "same", "near_copy": False},
            )
            cut.image.save(f"u/{owner.pk}/cuts/{name}-{t.id}.jpg",
                           ContentFile(face_jpeg(face, t.id)), save=False)
            cut.save()
    n = Character.objects.count() + 1
    return Character.objects.create(
        owner=owner, session=session, photo=photo, name=name, trigger_word=f"sks_ref{n}",
        style_id="original", status=status, **fields,
    )


def api(client, path, body=None, method="post"):
    return getattr(client, method)(f"/api/scene/{path}", body, content_type="application/json")


def run(client, capture, path, body):
    with capture(execute=True):
        return api(client, path, body)


def sent_bytes(fal, url: str) -> bytes:
    return fal.files[url.rsplit("/files/", 1)[-1]][0]


def cut_bytes(character, number: int) -> bytes:
    cut = character.session.cuts.get(number=number)
    with default_storage.open(cut.image.name, "rb") as fh:
        return fh.read()


# --- one character ------------------------------------------------------------------------------
def test_one_character_by_reference_sends_its_best_cuts_and_names_the_person(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="training")
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "expression": "웃으며 설명",
                    "location": "사무실", "situation": "세금 신고를 설명하는"})
    assert response.status_code == 202
    assert fal.submitted(LORA) == []
    (request,) = fal.submitted(EDIT)
    sent = request.arguments
    urls = sent.pop("image_urls")
    scene = Scene.objects.get()
    assert sent == {
        "prompt": "the person in the reference images, same face, hair and clothes, "
                  "smiling while explaining, office, explaining a tax filing",
        "image_size": "portrait_4_3",
        "num_inference_steps": 28,
        "guidance_scale": 2.5,
        "seed": scene.seed,
        "num_images": 1,
        "enable_safety_checker": True,
        "output_format": "jpeg",
    }
    assert [sent_bytes(fal, u) for u in urls] == [cut_bytes(kim, n) for n in CHOSEN]

    body = api(alice_client, response.json()["scene_id"], method="get").json()
    assert body["status"] == "completed" and body["method"] == "reference"
    assert [(r["number"], r["angle"]) for r in body["references"]] == [
        (19, "front"), (10, "three_quarter"), (12, "profile"), (2, "other")
    ]
    assert body["prompt"] == request.arguments["prompt"]
    assert body["seed"] == request.arguments["seed"]
    assert body["cost"] == body["estimate"]["total"] == 0.02  # COST_PER_IMAGE_GENERATION
    (cast,) = body["characters"]
    assert cast["identity"]["verdict"] == "same"  # a framing of the same face


def test_reference_price_follows_the_endpoints_listed_price(
    alice_client, user, fal, settings, django_capture_on_commit_callbacks
):
    settings.FAL_PRICES = {**settings.FAL_PRICES, EDIT: "0.03/mp"}
    kim = curated_character(user)
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "카페",
                    "image_size": "square_hd"})
    body = api(alice_client, response.json()["scene_id"], method="get").json()
    assert body["estimate"]["total"] == body["cost"] == 0.03  # 1 MP, estimate == ledger


# --- two characters -----------------------------------------------------------------------------
def test_two_characters_by_reference_send_a_then_b_two_each_placed_left_and_right(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, name="김대리", status="failed")
    grace = curated_character(user, name="그레이스", face="grace_hopper.jpg")
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-two-characters",
                   {"character_a_id": str(kim.public_id), "character_b_id": str(grace.public_id),
                    "location": "사무실", "a_action": "웃으며 설명", "b_action": "놀람",
                    "situation": "세금 신고를 설명하는"})
    assert response.status_code == 202
    (request,) = fal.submitted(EDIT)
    sent = dict(request.arguments)
    urls = sent.pop("image_urls")
    assert sent["prompt"] == (
        "two people in office, on the left the person in images 1–2 is smiling while "
        "explaining, on the right the person in images 3–4 is surprised expression, "
        "explaining a tax filing"
    )
    assert (sent["image_size"], sent["num_inference_steps"]) == ("landscape_16_9", 30)
    assert "loras" not in sent
    assert [sent_bytes(fal, u) for u in urls] == [
        cut_bytes(kim, 19), cut_bytes(kim, 10), cut_bytes(grace, 19), cut_bytes(grace, 10)
    ]
    body = api(alice_client, response.json()["scene_id"], method="get").json()
    assert body["method"] == "reference" and body["separate_identities"] is False
    assert [(r["role"], r["number"]) for r in body["references"]] == [
        ("A", 19), ("A", 10), ("B", 19), ("B", 10)
    ]
    # Each face matched to its own character against its own photo.
    assert [c["identity"]["verdict"] for c in body["characters"]] == ["same", "same"]


# --- defaults per character state -----------------------------------------------------------------
@pytest.mark.parametrize(
    "status, lora_url, endpoint",
    [
        ("draft", "", EDIT),  # right after prepare-training-data
        ("queued", "", EDIT),
        ("training", "", EDIT),
        ("failed", "", EDIT),
        ("active", "https://v3.fal.media/files/kim.st", LORA),
        ("active", "", EDIT),  # an active row without a LoRA URL cannot use the LoRA path
    ],
)
def test_default_method_follows_the_characters_state(
    alice_client, user, fal, django_capture_on_commit_callbacks, status, lora_url, endpoint
):
    kim = curated_character(user, status=status, lora_url=lora_url)
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실"})
    assert response.status_code == 202
    assert [r.endpoint for r in fal.submissions] == [endpoint]
    assert response.json()["method"] == ("lora" if endpoint == LORA else "reference")


def test_a_trained_character_can_still_be_drawn_by_reference(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="active", lora_url="https://v3.fal.media/files/k.st")
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실",
                    "method": "reference"})
    assert response.json()["method"] == "reference"
    assert [r.endpoint for r in fal.submissions] == [EDIT]


def test_two_characters_default_to_reference_unless_both_are_trained(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="active", lora_url="https://v3.fal.media/files/k.st")
    lee = curated_character(user, name="이부장", status="training")
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-two-characters",
                   {"character_a_id": str(kim.public_id), "character_b_id": str(lee.public_id)})
    assert response.json()["method"] == "reference"
    assert [r.endpoint for r in fal.submissions] == [EDIT]


def test_lora_asked_for_an_untrained_character_is_422_and_says_reference_works(
    alice_client, user, fal
):
    kim = curated_character(user, status="training")
    response = api(alice_client, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실", "method": "lora"})
    assert response.status_code == 422
    assert "학습이 끝나지 않은" in response.json()["detail"]
    assert "참조 이미지" in response.json()["detail"]
    assert fal.submissions == [] and not Scene.objects.exists()


def test_an_unknown_method_is_422(alice_client, user, fal):
    kim = curated_character(user)
    response = api(alice_client, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실", "method": "magic"})
    assert response.status_code == 422
    assert not Scene.objects.exists()


# --- the endpoint's limit -------------------------------------------------------------------------
def test_never_more_references_than_the_endpoint_takes(
    alice_client, user, fal, settings, django_capture_on_commit_callbacks
):
    kim = curated_character(user)
    lee = curated_character(user, name="이부장", face="grace_hopper.jpg")
    run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
        {"character_id": str(kim.public_id), "location": "사무실"})
    assert len(fal.submitted(EDIT)[-1].arguments["image_urls"]) == 4  # of 22 usable cuts

    settings.FAL_REFERENCE_MAX_IMAGES = 2  # e.g. another endpoint with a smaller limit
    run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
        {"character_id": str(kim.public_id), "location": "사무실"})
    assert [sent_bytes(fal, u) for u in fal.submitted(EDIT)[-1].arguments["image_urls"]] == [
        cut_bytes(kim, 19), cut_bytes(kim, 10)
    ]
    run(alice_client, django_capture_on_commit_callbacks, "generate-two-characters",
        {"character_a_id": str(kim.public_id), "character_b_id": str(lee.public_id)})
    two = fal.submitted(EDIT)[-1].arguments
    assert [sent_bytes(fal, u) for u in two["image_urls"]] == [
        cut_bytes(kim, 19), cut_bytes(lee, 19)
    ]
    assert "the person in image 1 is" in two["prompt"]
    assert "the person in image 2 is" in two["prompt"]


def test_the_fake_refuses_more_references_than_flux_2_edit_takes(fal):
    """The limit is real on fal (FAL.md §5): the fake answers five with fal's 422."""
    import fal_client

    client = fal_client.SyncClient(key="test:key")
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        client.submit(EDIT, {"prompt": "x", "image_urls": [f"https://v3.fal.media/files/{i}"
                                                           for i in range(5)]})
    assert refused.value.status_code == 422


# --- chosen once, kept ----------------------------------------------------------------------------
def test_references_are_chosen_once_kept_and_uploaded_once(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user)
    body = {"character_id": str(kim.public_id), "location": "사무실"}
    run(alice_client, django_capture_on_commit_callbacks, "generate-with-character", body)
    kim.refresh_from_db()
    assert [r["number"] for r in kim.reference_images] == CHOSEN
    uploads = len(fal.uploads)
    # A cut judged better later does not reshuffle the character's references.
    Cut.objects.filter(session=kim.session, number=1).update(
        identity={"distance": 0.01, "verdict": "same", "near_copy": False}
    )
    run(alice_client, django_capture_on_commit_callbacks, "generate-with-character", body)
    first, second = fal.submitted(EDIT)
    assert first.arguments["image_urls"] == second.arguments["image_urls"]
    assert len(fal.uploads) == uploads  # the hosted copies are reused while fresh


# --- bad input ------------------------------------------------------------------------------------
def test_a_restored_character_without_cuts_uses_its_reference_sheet_images(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, with_cuts=False, status="active")
    kim.training_data.save(f"u/{user.pk}/training/r.zip", ContentFile(training_zip("x", 5)))
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실"})
    assert response.status_code == 202
    (request,) = fal.submitted(EDIT)
    assert len(request.arguments["image_urls"]) == 4
    refs = api(alice_client, response.json()["scene_id"], method="get").json()["references"]
    assert [r["source"] for r in refs] == ["sheet"] * 4


def test_a_character_with_only_its_photo_uses_the_photo(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, with_cuts=False)
    response = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실"})
    (request,) = fal.submitted(EDIT)
    with default_storage.open(kim.photo.image.name, "rb") as fh:
        assert [sent_bytes(fal, u) for u in request.arguments["image_urls"]] == [fh.read()]
    refs = api(alice_client, response.json()["scene_id"], method="get").json()["references"]
    assert [r["source"] for r in refs] == ["photo"]


def test_a_character_with_nothing_to_refer_to_is_409_in_korean(alice_client, user, fal):
    kim = curated_character(user, with_cuts=False, with_photo=False, status="failed")
    response = api(alice_client, "generate-with-character",
                   {"character_id": str(kim.public_id), "location": "사무실"})
    assert response.status_code == 409
    assert "참조할 이미지가 없습니다" in response.json()["detail"]
    assert fal.submissions == [] and not Scene.objects.exists()


def test_deleted_or_another_users_character_is_404(alice_client, user, other_user, fal):
    gone = curated_character(user, status="deleted")
    theirs = curated_character(other_user, name="남의 캐릭터")
    mine = curated_character(user, name="내 캐릭터", face="grace_hopper.jpg")
    for body in (
        {"character_id": str(gone.public_id), "location": "사무실", "method": "reference"},
        {"character_id": str(theirs.public_id), "location": "사무실", "method": "reference"},
    ):
        assert api(alice_client, "generate-with-character", body).status_code == 404
    response = api(alice_client, "generate-two-characters",
                   {"character_a_id": str(mine.public_id),
                    "character_b_id": str(theirs.public_id)})
    assert response.status_code == 404
    assert fal.submissions == [] and not Scene.objects.exists()


# --- regenerate, episodes -------------------------------------------------------------------------
def test_regenerating_a_reference_scene_keeps_its_method_and_references(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="training")
    first = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                {"character_id": str(kim.public_id), "location": "사무실"}).json()
    again = run(alice_client, django_capture_on_commit_callbacks,
                f"{first['scene_id']}/regenerate", None).json()
    assert again["method"] == "reference" and again["prompt"] == first["prompt"]
    assert [r["number"] for r in again["references"]] == CHOSEN
    one, two = fal.submitted(EDIT)
    assert one.arguments["image_urls"] == two.arguments["image_urls"]


def test_episode_panels_can_be_generated_by_reference(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="training")
    episode = alice_client.post("/api/episode/", {"title": "1화"},
                                content_type="application/json").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/api/episode/{episode['episode_id']}/panels/generate",
            {"character_ids": [str(kim.public_id)], "location": "사무실",
             "method": "reference"},
            content_type="application/json",
        )
    assert response.status_code == 202
    (request,) = fal.submitted(EDIT)
    assert request.arguments["prompt"].startswith("the person in the reference images")
    assert len(request.arguments["image_urls"]) == 4
    # The episode preset's style keywords close the prompt, as for LoRA panels.
    scene = Scene.objects.get()
    assert scene.inputs["method"] == "reference"
    if scene.inputs.get("style"):
        assert request.arguments["prompt"].endswith(scene.inputs["style"])


# --- the compare view -----------------------------------------------------------------------------
def test_compare_makes_the_same_scene_the_other_way_side_by_side_with_identity(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="active", lora_url="https://v3.fal.media/files/k.st")
    first = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                {"character_id": str(kim.public_id), "expression": "놀람",
                 "location": "사무실"}).json()
    assert first["method"] == "lora"
    pair = run(alice_client, django_capture_on_commit_callbacks,
               f"{first['scene_id']}/compare", None)
    assert pair.status_code == 202
    both = api(alice_client, f"{first['scene_id']}/compare", method="get").json()
    assert both["lora"]["scene_id"] == first["scene_id"]
    assert both["reference"]["method"] == "reference"
    assert both["reference"]["compare_scene_id"] == first["scene_id"]
    lora_call, = fal.submitted(LORA)
    ref_call, = fal.submitted(EDIT)
    # The same scene: the same words after the person.
    assert lora_call.arguments["prompt"] == f"{kim.trigger_word}, surprised expression, office"
    assert ref_call.arguments["prompt"].endswith(", surprised expression, office")
    for side in ("lora", "reference"):
        assert both[side]["status"] == "completed"
        assert both[side]["characters"][0]["identity"]["verdict"] == "same"
    # Asking again shows the pair; nothing is paid twice.
    run(alice_client, django_capture_on_commit_callbacks, f"{first['scene_id']}/compare", None)
    assert len(fal.submissions) == 2

    page = alice_client.get(f"/scenes/{first['scene_id']}/compare/").content.decode()
    columns = re.findall(r'data-testid="compare-(lora|reference)"', page)
    assert columns == ["lora", "reference"]
    assert page.count("닮음 · 높음") == 2
    # A regenerated scene is a new one, not part of the pair.
    again = run(alice_client, django_capture_on_commit_callbacks,
                f"{first['scene_id']}/regenerate", None).json()
    assert again["method"] == "lora" and again["compare_scene_id"] is None


def test_compare_of_an_untrained_characters_reference_scene_is_422(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="training")
    first = run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
                {"character_id": str(kim.public_id), "location": "사무실"}).json()
    response = api(alice_client, f"{first['scene_id']}/compare")
    assert response.status_code == 422
    assert "학습이 끝나지 않은" in response.json()["detail"]
    both = api(alice_client, f"{first['scene_id']}/compare", method="get").json()
    assert both["lora"] is None and both["reference"]["scene_id"] == first["scene_id"]
    assert len(fal.submissions) == 1


# --- pages ----------------------------------------------------------------------------------------
def test_scene_page_offers_the_method_with_its_price_and_explanation(alice_client, user):
    curated_character(user, status="training")
    page = alice_client.get("/scenes/").content.decode()
    assert EXPLANATION in page
    assert re.search(r'name="method" value="reference"', page)
    assert re.search(r'name="method" value="lora"', page)
    assert re.search(r"참조 이미지 · <span data-method-price=\"reference\">\$0\.02", page)
    # A character still training is offered, marked as usable by reference.
    assert re.search(r"김대리 \(학습 중 · 참조 이미지로 사용\)", page)


def test_character_page_compares_lora_and_reference_scenes_on_identity(alice_client, user):
    kim = trained_character(user, name="김대리")
    for method, distances in (("lora", [0.2, 0.3, 0.4]), ("reference", [0.35, 0.5])):
        for d in distances:
            scene = Scene.objects.create(owner=user, mode="one", prompt="p", image_size="square",
                                         steps=28, image="x.jpg", inputs={"method": method})
            SceneCharacter.objects.create(
                scene=scene, character=kim, role="A", trigger_word=kim.trigger_word,
                lora_url="", scale=0.0,
                identity={"distance": d, "verdict": "same", "near_copy": False},
            )
    api_view = alice_client.get(f"/api/character/{kim.public_id}").json()["method_comparison"]
    assert api_view == {
        "lora": {"count": 3, "measured": 3, "same": 3, "median_distance": 0.3},
        "reference": {"count": 2, "measured": 2, "same": 2, "median_distance": 0.425},
    }
    page = alice_client.get(f"/characters/{kim.public_id}/").content.decode()
    box = re.search(r'data-testid="method-comparison".*?</section>', page, re.S).group(0)
    text = " ".join(re.sub(r"<[^>]+>", " ", box).split())
    assert f"LoRA 씬 3개 · 닮음 거리 중앙값 {statistics.median([0.2, 0.3, 0.4]):.2f}" in text
    assert "참조 이미지 씬 2개 · 닮음 거리 중앙값 0.43" in text


def test_purging_a_character_deletes_its_copied_reference_images(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    from characters.management import purge_character

    kim = curated_character(user, with_cuts=False, status="active")
    kim.training_data.save(f"u/{user.pk}/training/p.zip", ContentFile(training_zip("x", 2)))
    run(alice_client, django_capture_on_commit_callbacks, "generate-with-character",
        {"character_id": str(kim.public_id), "location": "사무실"})
    kim.refresh_from_db()
    copies = [r["image"] for r in kim.reference_images]
    assert len(copies) == 2 and all(default_storage.exists(n) for n in copies)
    purge_character(kim)
    assert not any(default_storage.exists(n) for n in copies)


def test_episode_editor_offers_the_method_and_its_form_makes_a_reference_panel(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    kim = curated_character(user, status="training")
    episode = alice_client.post("/api/episode/", {"title": "1화"},
                                content_type="application/json").json()
    page = alice_client.get(f"/episodes/{episode['episode_id']}/").content.decode()
    assert 'data-testid="panel-method"' in page and "참조 이미지 · $0.02" in page
    assert "김대리" in page  # a character still training is offered for panels
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/episodes/{episode['episode_id']}/panels/generate/",
                          {"character_a": str(kim.public_id), "location": "사무실",
                           "method": "reference", "count": "1"})
    assert [r.endpoint for r in fal.submissions] == [EDIT]
