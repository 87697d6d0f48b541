"""My Characters in a real browser: the card, test-generate at scale 1.2, delete twice."""

import pytest

from characters.models import Character, CharacterImage
from tests.characters.factories import trained_character
from tests.test_browser_wizard import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_browser_my_characters_test_generate_and_delete(
    page, live_server, settings, background_queue
):
    settings.WEBTOON_OFFLINE_IMAGE_SECONDS = 0.5
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    user = login(page, live_server)
    character = trained_character(user, name="박사장")

    page.goto(live_server.url + "/characters/")
    card = page.get_by_test_id("character-card")
    assert card.count() == 1
    text = card.inner_text()
    assert "박사장" in text and "3/24장" in text
    # The trigger word is under 고급 (issue 15).
    assert card.get_by_test_id("card-trigger-word").text_content() == character.trigger_word
    assert card.locator(".thumbs img").count() == 3

    card.get_by_role("link", name="테스트 생성").click()
    page.wait_for_url(f"**/characters/{character.public_id}/#test")
    slider = page.get_by_test_id("scale")
    slider.evaluate(
        "el => { el.value = '1.2'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert page.locator("#scale-value").inner_text() == "1.20"
    page.fill("[data-testid=test-generate] input[name=prompt]", "waving at the reader")
    page.click("[data-testid=test-generate] button[type=submit]")
    page.wait_for_selector("[data-testid=gallery-item] img", timeout=30_000)
    image = CharacterImage.objects.get()
    assert image.scale == 1.2
    assert image.prompt == f"{character.trigger_word}, waving at the reader"
    assert "1.2" in page.get_by_test_id("gallery-item").inner_text()

    page.goto(live_server.url + "/characters/")
    page.get_by_test_id("delete").click()
    first = page.get_by_test_id("delete-confirm-1")
    assert "정말 삭제하시겠습니까?" in first.inner_text()
    first.get_by_role("button", name="삭제").click()
    page.get_by_test_id("delete-final").click()
    page.wait_for_selector("[data-testid=character-card]", state="detached")
    assert Character.objects.get(pk=character.pk).status == "deleted"
    page.reload()
    assert page.get_by_test_id("character-card").count() == 0
    assert errors == []
