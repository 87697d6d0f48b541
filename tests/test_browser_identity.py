"""Issue 16 in a real browser, on the fal path (fal-client through the fake, which draws real
faces): a separated two-character scene with its stages on demand, and the completion page
with the scale sweep grid and the reference sheet, at desktop width and on a 390 px phone.

Screenshots go to $WEBTOON_SCREENSHOTS when it is set (to look at them), else a temp dir."""

import os
import tempfile
from pathlib import Path

import pytest

from characters import sweep
from tests.characters.factories import trained_character
from tests.scenes.test_separation import photo_of
from tests.test_browser_wizard import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shots() -> Path:
    folder = Path(os.environ.get("WEBTOON_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_browser_separated_two_character_scene(page, live_server, fal, background_queue):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    user = login(page, live_server)
    a = trained_character(user, name="김대리", lora_url="https://v3.fal.media/files/a.st")
    b = trained_character(user, name="이부장", lora_url="https://v3.fal.media/files/b.st")
    b.photo = photo_of(user, "grace_hopper.jpg")
    b.save(update_fields=["photo"])
    fal.lora_faces[b.lora_url] = "grace_hopper.jpg"
    folder = shots()

    page.goto(live_server.url + "/scenes/")
    two = page.get_by_test_id("scene-two")
    assert two.locator("input[name=separate_identities]").is_checked()
    estimate = page.get_by_test_id("two-estimate").inner_text()
    assert "예상 비용: 인물 분리 $" in estimate and "분리 끄면 $" in estimate
    two.locator("input[name=location]").fill("회의실")
    two.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=scene][data-status=completed] img", timeout=60_000)
    scene = page.get_by_test_id("scene").first
    assert "인물 분리 완료" in scene.inner_text()
    identity = scene.get_by_test_id("scene-identity").inner_text()
    assert f"{a.name}: 닮음 · 높음" in identity and f"{b.name}: 닮음 · 높음" in identity
    stages = scene.get_by_test_id("scene-stages")
    assert not stages.locator("img").first.is_visible()  # on demand only
    stages.locator("summary").click()
    assert stages.locator("img").count() == 3 and stages.locator("img").nth(2).is_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.stage img')].every(i => i.naturalWidth > 0)"
    )
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / "scene-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert no_sideways_scroll(page)
    page.screenshot(path=str(folder / "scene-phone.png"), full_page=True)
    assert errors == []


def test_browser_completion_page_sweep_grid_and_reference_sheet(
    page, live_server, fal, background_queue, settings
):
    settings.SCALE_SWEEP_SCALES = [0.6, 0.8, 1.0]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    user = login(page, live_server)
    character = trained_character(user, name="박사장")
    sweep.start_sweep(character)
    folder = shots()

    page.goto(live_server.url + character.get_absolute_url())
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=sweep-cell] img').length === 6",
        timeout=60_000,
    )
    choice = page.get_by_test_id("sweep-choice").inner_text()
    assert "추천 강도 0.8" in choice and "기본 강도로 설정했습니다" in choice
    grid = page.get_by_test_id("scale-sweep")
    assert grid.locator("th.chosen").inner_text() == "0.8"
    assert "닮지 않음 · 낮음" in grid.inner_text() and "닮음 · 높음" in grid.inner_text()
    page.reload()  # the sheet is drawn by a worker once the page asked for it
    page.wait_for_selector("[data-testid=reference-sheet] img", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.reference-sheet').naturalWidth > 1000"
    )
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / "completion-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert no_sideways_scroll(page)
    page.screenshot(path=str(folder / "completion-phone.png"), full_page=True)
    assert errors == []
