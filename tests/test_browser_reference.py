"""Reference mode in a real browser on the offline backend (issue 17): a character still
training makes a scene right away, drawn from its references; then a two-character one."""

import pytest

from characters.models import Character
from scenes.models import Scene
from tests.scenes.test_reference import CHOSEN, curated_character
from tests.test_browser_wizard import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMPLETED = "[data-testid=scene][data-status=completed] > img"


def test_browser_scene_by_reference_while_the_character_is_still_training(
    page, live_server, settings, background_queue
):
    settings.WEBTOON_OFFLINE_IMAGE_SECONDS = 0.3
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    user = login(page, live_server)
    kim = curated_character(user, name="김대리", status="training")
    grace = curated_character(user, name="그레이스", face="grace_hopper.jpg", status="draft")

    # The character page says it can be used now.
    page.goto(live_server.url + f"/characters/{kim.public_id}/")
    hint = page.get_by_test_id("reference-mode-hint")
    assert "학습 전에도 바로 사용" in hint.inner_text()
    hint.get_by_role("link").click()
    page.wait_for_url("**/scenes/?character=*")

    one = page.get_by_test_id("scene-one")
    select = one.get_by_test_id("character-select")
    assert select.input_value() == str(kim.public_id)
    chosen = select.locator("option:checked").inner_text()
    assert "김대리 (학습 중 · 참조 이미지로 사용)" in chosen
    choice = one.get_by_test_id("method-choice")
    explanation = "학습 전에도 바로 사용 · 닮음 정도는 학습 후가 더 높을 수 있습니다"
    assert explanation in choice.inner_text()
    assert "참조 이미지 · $0.02" in choice.inner_text()
    one.locator("input[name=method][value=reference]").check()
    one.locator("input[name=expression]").fill("웃으며 설명")
    one.locator("input[name=location]").fill("사무실")
    one.locator("button[type=submit]").click()
    page.wait_for_selector(COMPLETED, timeout=30_000)
    card = page.get_by_test_id("scene").first
    assert "🖼️ 참조 이미지" in card.get_by_test_id("scene-method").inner_text()
    # Drawn from the references: the offline picture is a framing of the astronaut's cut,
    # and its face is judged against the photo.
    assert "닮음" in card.get_by_test_id("scene-identity").inner_text()
    scene = Scene.objects.get()
    assert scene.inputs["method"] == "reference"
    assert [r["number"] for r in scene.inputs["references"]["A"]] == CHOSEN
    assert scene.call.endpoint == settings.FAL_ENDPOINTS["reference"]
    assert len(scene.call.arguments["image_urls"]) == 4
    kim.refresh_from_db()
    assert kim.status == "training"  # still training: nothing waited for it

    # Two characters, neither trained: A's references then B's, side by side.
    two = page.get_by_test_id("scene-two")
    two.locator("select[name=character_a]").select_option(str(kim.public_id))
    two.locator("select[name=character_b]").select_option(str(grace.public_id))
    two.locator("input[name=location]").fill("회의실")
    two.locator("input[name=method][value=reference]").check()
    two.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'[data-testid=scene][data-status=completed] > img').length === 2",
        timeout=30_000,
    )
    newest = Scene.objects.order_by("-created_at").first()
    assert newest.mode == "two" and newest.inputs["method"] == "reference"
    assert "images 1–2" in newest.prompt and "images 3–4" in newest.prompt
    verdicts = [c.identity["verdict"] for c in newest.cast.order_by("role")]
    assert verdicts == ["same", "same"]  # each face matched to its own character
    assert Character.objects.filter(status="active").count() == 0
    assert errors == []
