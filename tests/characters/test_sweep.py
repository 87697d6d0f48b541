"""A default strength chosen by measurement (issue 16): the scale sweep after training, its
cost in the notice, the recommended scale, and the grid on the completion page.

The fal fake draws the LoRA's face (the astronaut) for LoRA inference, and a stranger
(Grace Hopper) below `fake.weak_scale`: a LoRA too weak to carry the likeness."""

import pytest

from characters import sweep, training
from characters.models import Character, SweepImage
from tests.characters.factories import trained_character
from tests.characters.test_curation import astronaut_photo
from tests.characters.test_training import drive, prepared, start
from webtoon.jobs import services as jobs
from webtoon.jobs.models import Job, JobState

pytestmark = pytest.mark.django_db

LORA = "fal-ai/flux-lora"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MIN_SELECTED_CUTS = 1  # a 4-cut session is enough to train here
    settings.SCALE_SWEEP_SCALES = [0.6, 0.8, 1.0]
    settings.SCALE_SWEEP_PROMPTS = ["upper body, smiling, office background",
                                    "three-quarter view, cafe background"]


def sweep_requests(fal):
    return [r for r in fal.submitted(LORA) if "seed" in r.arguments]  # samples have no seed


def test_training_renders_the_sweep_and_sets_the_lowest_scale_judged_same(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    fal.weak_scale = 0.9  # this LoRA needs 1.0 to look like its person
    character = prepared(user)
    character.photo = astronaut_photo(user)  # the anchor the sweep measures against
    character.save(update_fields=["photo"])
    notice = alice_client.get(f"/characters/{character.public_id}/train/").content.decode()
    # 6 images of 512² on flux-lora at $0.035/MP ($0.009 each), before paying
    assert "강도 비교 이미지 6장" in notice and "$0.05" in notice
    assert training.cost_breakdown(character)["scale_sweep"] == {
        "usd": 0.05, "krw": 76, "images": 6
    }

    with django_capture_on_commit_callbacks(execute=True):
        task_id = start(alice_client, character).json()["task_id"]
    with django_capture_on_commit_callbacks(execute=True):
        assert drive(Job.objects.get(public_id=task_id)).state == JobState.SUCCEEDED

    sent = sweep_requests(fal)
    character.refresh_from_db()
    assert sorted((r.arguments["loras"][0]["scale"], r.arguments["prompt"]) for r in sent) == [
        (scale, f"{character.trigger_word}, {prompt}")
        for scale in (0.6, 0.8, 1.0)
        for prompt in ("three-quarter view, cafe background",
                       "upper body, smiling, office background")
    ]
    for request in sent:
        assert request.arguments["image_size"] == "square"
        assert request.arguments["loras"][0]["path"] == character.lora_url
    seeds = {}
    for request in sent:  # one seed per prompt: only the strength changes along a row
        seeds.setdefault(request.arguments["prompt"], set()).add(request.arguments["seed"])
    assert all(len(s) == 1 for s in seeds.values()) and len(seeds) == 2

    body = alice_client.get(f"/api/character/{character.public_id}").json()
    assert body["recommended_scale"] == 1.0
    assert body["recommended_scale_reason"] == (
        "1.0부터 원본 사진과 같은 사람으로 보여, 가장 낮은 강도를 골랐습니다"
    )
    assert body["lora_scale_default"] == 1.0  # nobody had set it: the measured one is used
    images = body["sweep_images"]
    assert len(images) == 6 and all(i["url"] for i in images)
    assert {i["scale"]: i["identity"]["verdict"] for i in images} == {
        0.6: "different", 0.8: "different", 1.0: "same"
    }
    assert [i["chosen"] for i in images].count(True) == 2
    assert alice_client.get(images[0]["url"]).status_code == 200
    # The test images are measured too (identity on every image of the character).
    assert all(s.identity["verdict"] in ("same", "different") for s in character.samples.all())

    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert 'data-testid="scale-sweep"' in page
    assert page.count('data-testid="sweep-cell"') == 6
    assert "추천 강도 1.0" in page and "가장 낮은 강도를 골랐습니다" in page
    assert "기본 강도로 설정했습니다" in page and "닮지 않음 · 낮음" in page


def run_sweep(character, capture):
    with capture(execute=True):
        job = sweep.start_sweep(character)
    return Job.objects.get(pk=job.pk)


def test_a_default_the_user_set_is_kept_and_the_recommendation_still_shown(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    response = alice_client.patch(f"/api/character/{character.public_id}",
                                  {"lora_scale_default": 1.2}, content_type="application/json")
    assert response.status_code == 200
    run_sweep(character, django_capture_on_commit_callbacks)
    character.refresh_from_db()
    assert character.lora_scale_user_set is True and character.lora_scale_default == 1.2
    body = alice_client.get(f"/api/character/{character.public_id}").json()
    assert body["recommended_scale"] == 0.8  # 0.6 shows the stranger, 0.8 the person
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert "직접 정하신 기본 강도 1.20를 그대로 둡니다" in page


def test_saving_the_settings_form_unchanged_is_not_the_users_choice(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    alice_client.patch(f"/api/character/{character.public_id}", {"lora_scale_default": 0.8},
                       content_type="application/json")
    character.refresh_from_db()
    assert character.lora_scale_user_set is False


def test_a_sweep_without_faces_keeps_the_default_and_says_why(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    fal.lora_faces[character.lora_url] = "chelsea.png"  # a drawn style: no face to measure
    run_sweep(character, django_capture_on_commit_callbacks)
    character.refresh_from_db()
    assert character.lora_scale_default == 0.8
    assert character.current_version.recommended_scale is None
    assert character.current_version.scale_reason == (
        "비교 이미지에서 얼굴을 찾지 못해 강도를 고르지 못했습니다 (기본값 유지)"
    )
    assert {r.identity["verdict"] for r in SweepImage.objects.all()} == {"no_face"}


def test_best_distance_is_chosen_when_no_scale_is_judged_same():
    def row(scale, distance, verdict):
        return SweepImage(scale=scale, identity={"distance": distance, "verdict": verdict,
                                                 "near_copy": False})

    rows = [row(0.6, 0.70, "different"), row(0.6, 0.66, "different"),
            row(0.8, 0.62, "unsure"), row(0.8, 0.64, "unsure"),
            row(1.0, 0.69, "different"), row(1.0, None, "no_face")]
    assert sweep.recommend(rows) == (0.8, "0.8에서 가장 닮았습니다")
    # The lowest scale whose images are all `same` wins over a better distance higher up.
    rows = [row(0.6, 0.55, "same"), row(0.8, 0.30, "same"), row(0.6, 0.58, "same")]
    assert sweep.recommend(rows)[0] == 0.6
    # One `unsure` image keeps a scale from counting as `same`.
    rows = [row(0.6, 0.55, "same"), row(0.6, 0.61, "unsure"), row(0.8, 0.40, "same")]
    assert sweep.recommend(rows)[0] == 0.8


def test_an_empty_setting_means_no_sweep_and_no_cost(alice_client, user, fal, settings):
    settings.SCALE_SWEEP_SCALES = []
    character = trained_character(user)
    assert sweep.start_sweep(character) is None
    assert training.cost_breakdown(character)["scale_sweep"]["usd"] == 0
    assert sweep_requests(fal) == []
    draft = Character.objects.create(owner=user, name="새", trigger_word="sks_new",
                                     style_id="original", candidate_images_count=24)
    assert "강도 비교" not in alice_client.get(
        f"/characters/{draft.public_id}/train/"
    ).content.decode()


def test_a_retrain_measures_its_new_version_again(
    alice_client, user, offline, settings, django_capture_on_commit_callbacks
):
    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 0
    character = trained_character(user)
    photo = astronaut_photo(user)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/api/character/{character.public_id}/retrain",
                          {"mode": "new", "confirm_cost": True,
                           "photo_ids": [str(photo.public_id)]},
                          content_type="application/json")
    character.refresh_from_db()
    for _ in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            jobs.advance_job(character.training_job_id)
        character.refresh_from_db()
        if character.training_job.is_terminal:
            break
    version = character.current_version
    assert version.number == 2 and version.sweep_job is not None
    assert version.sweep_job.state == JobState.SUCCEEDED
    rows = list(version.sweep_images.all())
    assert sorted(r.scale for r in rows) == [0.6, 0.6, 0.8, 0.8, 1.0, 1.0]
    assert all(r.image and r.identity is not None for r in rows)
    assert version.scale_reason  # a choice with its reason, or why none was made
