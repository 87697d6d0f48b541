"""Issue 15 in a real browser (Debian chromium + Playwright), desktop 1280×900 and phone
390×844: phone layout, live guardrails, progress that moves, empty states without reload.

Screenshots to look at: TRUST_SCREENSHOTS=<folder> (the tests never depend on them)."""

import os
from pathlib import Path

import pytest

from characters.models import Character
from tests.characters.factories import trained_character
from tests.characters.test_training import make_session
from tests.test_browser_wizard import login, upload_astronaut

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_WORD = "sks_" + "verylongtriggerword" * 2  # 42 > 40: trimmed below


def shot(page, name):
    if folder := os.environ.get("TRUST_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_browser_phone_menu_no_sideways_scroll_and_a_slim_header(page, live_server, settings):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size(PHONE)
    user = login(page, live_server)
    boss = trained_character(user, name="박사장님의 아주 긴 캐릭터 이름")
    Character.objects.filter(pk=boss.pk).update(trigger_word=LONG_WORD[:40])
    make_session(user, cuts=16)
    pages = ["/", "/characters/", boss.get_absolute_url(), "/scenes/", "/jobs/", "/nowhere/"]
    for url in pages:
        page.goto(live_server.url + url)
        assert no_sideways_scroll(page), url
        header = page.evaluate(
            "document.querySelector('.topbar').getBoundingClientRect().bottom"
        )
        assert header <= 844 / 10, (url, header)  # banner + nav: at most a tenth
        assert not page.locator("nav.nav").is_visible()  # behind the ☰ menu
    page.goto(live_server.url + boss.get_absolute_url())
    page.locator("[data-testid=advanced] summary").first.click()
    assert no_sideways_scroll(page)  # the long trigger word wraps
    page.get_by_test_id("menu-toggle").click()
    links = page.locator("nav.nav a")
    assert links.first.is_visible()
    # Every menu entry on one line: no word broken across lines.
    heights = links.evaluate_all("els => els.map(a => a.getClientRects().length)")
    assert heights and all(n == 1 for n in heights)
    shot(page, "phone-menu-open")
    page.goto(live_server.url + "/nowhere/")
    assert "페이지를 찾을 수 없습니다" in page.get_by_test_id("error-page").inner_text()
    assert page.locator("link[rel=icon]").get_attribute("href").endswith("favicon.svg")
    assert errors == []


def test_browser_desktop_nav_shows_every_link_on_one_line(page, live_server):
    page.set_viewport_size(DESKTOP)
    login(page, live_server)
    assert not page.get_by_test_id("menu-toggle").is_visible()
    rects = page.locator("nav.nav a").evaluate_all(
        "els => els.map(a => a.getClientRects().length)"
    )
    assert rects and all(n == 1 for n in rects)
    banner = page.get_by_test_id("offline-banner").inner_text()
    assert "미리보기 모드" in banner and "FAL_KEY" not in banner


def test_browser_curation_counter_and_next_step_follow_the_minimum(page, live_server):
    user = login(page, live_server)
    session = make_session(user, cuts=16)
    page.goto(live_server.url + f"/characters/sessions/{session.public_id}/")
    page.evaluate("window.__noReload = true")
    assert page.get_by_test_id("counter").inner_text().startswith("✅")
    boxes = page.get_by_test_id("cut-checkbox")
    boxes.nth(0).uncheck()
    boxes.nth(1).uncheck()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=counter]').innerText.includes('14/16')"
    )
    assert page.get_by_test_id("counter").inner_text().startswith("⚠️")
    page.wait_for_selector("[data-testid=next-step][data-waiting=minimum]")
    assert page.get_by_test_id("next-step").is_disabled()
    assert "1장 더 필요" in page.get_by_test_id("next-step-note").inner_text()
    assert page.evaluate("window.__noReload") is True


def test_browser_scene_guardrails_before_paying(page, live_server, settings):
    user = login(page, live_server)
    a = trained_character(user, name="김대리")
    b = trained_character(user, name="이부장")
    page.goto(live_server.url + "/scenes/")
    two = page.get_by_test_id("scene-two")
    warning = page.get_by_test_id("scale-sum-warning")
    assert not warning.is_visible()
    two.locator("input[name=lora_scale_a]").evaluate(
        "el => { el.value = '1.0'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert warning.is_visible() and "합이 1.5를 넘습니다" in warning.inner_text()
    # Submitting without confirming is refused next to the button, nothing paid.
    two.locator("input[name=location]").fill("카페")
    page.get_by_test_id("scene-two-submit").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=two-error]').innerText.includes('확인란')"
    )
    assert page.get_by_test_id("scene").count() == 0
    # The same character twice: said next to the button, which waits.
    two.locator("select[name=character_b]").select_option(str(a.public_id))
    assert page.get_by_test_id("same-twice").is_visible()
    assert page.get_by_test_id("scene-two-submit").is_disabled()
    two.locator("select[name=character_b]").select_option(str(b.public_id))
    assert not page.get_by_test_id("same-twice").is_visible()
    # One character, nothing described: asks for 표정/장소/상황 next to its button.
    page.get_by_test_id("scene-one-submit").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=one-error]').innerText"
        ".includes('표정, 장소, 상황')"
    )
    assert page.get_by_test_id("scene").count() == 0


def test_browser_scene_price_follows_size_method_and_character(page, live_server):
    from scenes import reference, separation
    from webtoon.ui.money import price_text

    user = login(page, live_server)
    trained_character(user, name="김대리")
    trained_character(user, name="이부장")
    page.goto(live_server.url + "/scenes/")
    one = page.get_by_test_id("scene-one")
    button = page.get_by_test_id("scene-one-submit")

    def lora(size):
        return price_text(separation.estimate(False, size)["total"])

    assert button.inner_text() == f"씬 생성 · {lora('portrait_4_3')}"
    one.locator("select[name=image_size]").select_option("square_hd")
    assert lora("square_hd") != lora("portrait_4_3")  # a megapixel price: sizes differ
    assert button.inner_text() == f"씬 생성 · {lora('square_hd')}"
    assert one.locator("[data-method-price=lora]").inner_text() == lora("square_hd")
    one.locator("input[name=method][value=reference]").check()
    assert button.inner_text() == f"씬 생성 · {price_text(reference.unit_cost('square_hd'))}"
    shot(page, "scene-price-desktop")
    page.set_viewport_size(PHONE)
    assert no_sideways_scroll(page)
    shot(page, "scene-price-phone")
    # Two characters: switching the identity separation off shows the single-pass price.
    two_button = page.get_by_test_id("scene-two-submit")
    assert two_button.inner_text() == f"씬 생성 · {price_text(separation.estimate(True)['total'])}"
    page.get_by_test_id("scene-two").locator("input[name=separate_identities]").uncheck()
    assert two_button.inner_text() == f"씬 생성 · {price_text(separation.estimate(False)['total'])}"


@pytest.mark.long
def test_browser_training_progress_moves_within_ten_seconds(
    page, live_server, settings, background_queue
):
    settings.WEBTOON_OFFLINE_IMAGE_SECONDS = 0.1
    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 120
    settings.MIN_SELECTED_CUTS = 4
    user = login(page, live_server)
    session = make_session(user, cuts=4)
    from characters import training

    character = training.prepare_training_data(
        owner=user, session_id=session.public_id, character_name="박사장"
    )
    page.goto(live_server.url + f"/characters/{character.public_id}/train/")
    page.get_by_test_id("start-training").click()
    page.wait_for_selector("[data-testid=training-panel][data-status=training]", timeout=30_000)
    page.wait_for_function(
        "() => Number(document.querySelector('progress.progress').value) > 0", timeout=30_000
    )
    first = page.evaluate("Number(document.querySelector('progress.progress').value)")
    remaining = page.get_by_test_id("remaining").inner_text()
    assert "분" in remaining and "초" not in remaining  # minutes, not seconds
    assert "학습 중" in page.title()
    page.wait_for_function(
        f"() => Number(document.querySelector('progress.progress').value) > {first}",
        timeout=10_500,
    )


def test_browser_last_card_deleted_shows_the_empty_state_and_says_so(page, live_server):
    user = login(page, live_server)
    trained_character(user, name="박사장")
    page.goto(live_server.url + "/characters/")
    page.evaluate("window.__noReload = true")
    assert not page.get_by_test_id("no-characters").is_visible()
    page.get_by_test_id("delete").click()
    page.get_by_test_id("delete-confirm-1").get_by_role("button", name="삭제").click()
    page.get_by_test_id("delete-final").click()
    page.wait_for_selector("[data-testid=character-card]", state="detached")
    assert page.get_by_test_id("no-characters").is_visible()
    assert "'박사장' 캐릭터를 삭제했습니다." in page.get_by_test_id("flash").inner_text()
    assert page.evaluate("window.__noReload") is True


# --- screenshots of the four pages, desktop and phone -----------------------------------------
@pytest.mark.long
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_browser_four_pages_look_finished(
    page, live_server, settings, background_queue, viewport
):
    settings.WEBTOON_OFFLINE_IMAGE_SECONDS = 0.05
    settings.WEBTOON_OFFLINE_TRAINING_SECONDS = 600
    name = "desktop" if viewport is DESKTOP else "phone"
    page.set_viewport_size(viewport)
    user = login(page, live_server)
    boss = trained_character(user, name="박사장")
    upload_astronaut(page, live_server)
    page.click("[data-testid=style-form] button[type=submit]")
    page.wait_for_url("**/sessions/**")
    page.wait_for_function("() => !document.querySelector('#poller[hx-get]')", timeout=120_000)
    assert no_sideways_scroll(page)
    shot(page, f"{name}-curation")

    page.get_by_test_id("next-step").click()
    page.fill("input[name=name]", "김세무사")
    page.click("[data-testid=prepare-form] button[type=submit]")
    page.wait_for_url("**/train/")
    page.get_by_test_id("start-training").click()
    page.wait_for_selector("[data-testid=training-panel][data-status=training]", timeout=30_000)
    page.wait_for_function(
        "() => Number(document.querySelector('progress.progress').value) > 0", timeout=30_000
    )
    assert no_sideways_scroll(page)
    shot(page, f"{name}-training")

    page.goto(live_server.url + "/characters/")
    assert page.get_by_test_id("character-card").count() == 2
    assert no_sideways_scroll(page)
    shot(page, f"{name}-my-characters")

    page.goto(live_server.url + f"/scenes/?character={boss.public_id}")
    page.fill("[data-testid=scene-one] input[name=expression]", "난처한 표정")
    page.fill("[data-testid=scene-one] input[name=location]", "사무실")
    page.get_by_test_id("scene-one-submit").click()
    page.wait_for_selector("[data-testid=scene][data-status=completed]", timeout=30_000)
    words = page.get_by_test_id("scene-words").first.inner_text()
    assert words == "표정: 난처한 표정 · 장소: 사무실"
    assert not page.get_by_test_id("scene-prompt").first.is_visible()  # behind 프롬프트 보기
    assert no_sideways_scroll(page)
    shot(page, f"{name}-scene")
