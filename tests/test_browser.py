"""A real browser (Debian chromium driven by Playwright) against the live server."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_browser_login_lands_on_korean_home(page, live_server, tmp_path):
    get_user_model().objects.create_user("alice", password="pw-alice-123")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(live_server.url + "/")

    assert page.url.startswith(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("form button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    assert "환영합니다" in page.inner_text("h1")
    nav = page.locator("nav.nav")
    assert nav.get_by_role("link", name="내 캐릭터").is_visible()
    assert nav.get_by_role("link", name="새 캐릭터").is_visible()
    assert nav.get_by_role("link", name="씬 만들기").is_visible()
    banner = page.get_by_test_id("offline-banner")
    assert banner.is_visible()
    assert "미리보기 모드: 실제 AI 대신 예시 그림이 나옵니다" in banner.inner_text()
    # Static files are served: htmx is loaded and the stylesheet applied.
    page.wait_for_function("() => typeof htmx === 'object'")
    assert page.evaluate("typeof htmx") == "object"
    assert banner.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 243, 205)"
    assert errors == []

    shot = tmp_path / "home.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_wrong_password_shows_korean_error(page, live_server):
    get_user_model().objects.create_user("alice", password="pw-alice-123")

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-the-password")
    page.click("form button[type=submit]")

    assert page.locator("p.error").inner_text() == "아이디 또는 비밀번호가 올바르지 않습니다."
    assert "/accounts/login/" in page.url
