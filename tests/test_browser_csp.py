"""The Content-Security-Policy in a real browser: every main page loads without a single
violation, and htmx, our scripts and the episode editor's layout still work under it."""

import pytest
from django.contrib.auth import get_user_model

from characters import generation
from tests.characters.factories import trained_character
from tests.characters.test_curation import astronaut_photo
from tests.episodes.helpers import episode, seed_presets, uploaded_panel
from webtoon.jobs import services as jobs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any page script in every document (Playwright injects it past the CSP).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") +
                    " at " + e.sourceFile + ":" + e.lineNumber);
}, true);
"""


class Watcher:
    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(WATCH)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def violations(self) -> list[str]:
        """What the current document reported so far, plus the console's CSP lines."""
        return self.page.evaluate("window.__csp") + self.console

    def visit(self, url: str, ready: str | None = None) -> list[str]:
        self.page.goto(url)
        if "/admin/" not in url:  # the admin has no htmx
            # A function, not a string: a string predicate is eval'ed in the page (CSP: no).
            self.page.wait_for_function("() => typeof htmx === 'object'")
        if ready:
            self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")
        return self.violations()


def login(page, live_server):
    user = get_user_model().objects.create_superuser("alice", password="pw-alice-123")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("form button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    return user


def curation_session(user):
    """24 cuts made on the offline backend, checked, ready for curation."""
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    generation.start_generation(owner=user, session_id=session.public_id)  # inline queue
    session.refresh_from_db()
    return session


@pytest.mark.long
def test_browser_main_pages_load_without_csp_violations(page, live_server):
    seed_presets()
    watcher = Watcher(page)
    user = login(page, live_server)
    character = trained_character(user, name="박사장")
    session = curation_session(user)
    ep = episode(user)
    uploaded_panel(user, ep)
    job = jobs.create_image_job(user, "a cat at a desk")

    site = live_server.url
    pages = {
        "/": None,
        "/characters/new/": "[data-testid=upload-form]",
        f"/characters/sessions/{session.public_id}/": "[data-testid=cut] img",
        "/characters/": "[data-testid=character-card]",
        f"/characters/{character.public_id}/": None,
        "/scenes/": "[data-testid=character-select]",
        "/episodes/": None,
        f"/episodes/{ep.public_id}/": "[data-testid=panel] img",
        "/jobs/": "[data-testid=job-card] progress",
        "/notifications/": None,
        "/accounts/profile/": None,
        "/admin/": "#content",
        "/admin/jobs/job/": "#result_list",
        f"/admin/jobs/job/{job.pk}/change/": "[data-testid=detail-actions]",
        "/admin/characters/character/": "#result_list",
    }
    found = {url: watcher.visit(site + url, ready) for url, ready in pages.items()}
    assert {url: v for url, v in found.items() if v} == {}

    # The API docs: Swagger UI from our static files renders the operations.
    page.goto(site + "/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert watcher.violations() == []
    assert watcher.errors == []

    # The watcher is not blind: a style attribute added now is refused and reported.
    page.goto(site + "/jobs/")
    page.evaluate("document.body.setAttribute('style', 'background: red')")
    page.wait_for_function("() => window.__csp.length > 0")
    assert "style-src-attr" in page.evaluate("window.__csp")[0]


def test_browser_htmx_and_our_scripts_work_under_the_policy(page, live_server):
    seed_presets()
    watcher = Watcher(page)
    user = login(page, live_server)
    session = curation_session(user)
    ep = episode(user)
    panel = uploaded_panel(user, ep)

    # Curation: unchecking a cut updates the counter through htmx; a click zooms (app.js).
    page.goto(f"{live_server.url}/characters/sessions/{session.public_id}/")
    counter = page.get_by_test_id("counter")
    boxes = page.locator("[data-testid=cut-checkbox]:checked")
    before = boxes.count()
    assert f"선택: {before}/24장" in counter.inner_text()
    boxes.first.uncheck()
    page.wait_for_function(
        "n => document.querySelector('[data-testid=counter]').innerText.includes(n + '/24')",
        arg=before - 1,
    )
    page.locator("[data-testid=cut] img").first.click()
    assert page.get_by_test_id("zoom").is_visible()
    page.keyboard.press("Escape")
    assert watcher.violations() == []

    # Episode editor: the stage and bubbles are laid out from data-* attributes (no style
    # attributes), for the page as served and for a bubble htmx adds.
    page.goto(f"{live_server.url}/episodes/{ep.public_id}/")
    stage = page.locator(f"#stage-{panel.public_id}")
    assert stage.evaluate("el => el.style.aspectRatio") != ""
    page.get_by_test_id("add-speech").click()
    bubble = page.get_by_test_id("bubble")
    bubble.wait_for()
    geometry = bubble.evaluate(
        "el => ({left: parseFloat(el.style.left), width: parseFloat(el.style.width),"
        " x: +el.dataset.x, w: +el.dataset.w, fs: el.style.getPropertyValue('--fs')})"
    )
    assert geometry["left"] == pytest.approx(geometry["x"] * 100, abs=0.01)
    assert geometry["width"] == pytest.approx(geometry["w"] * 100, abs=0.01)
    assert geometry["fs"] != ""
    box, stage_box = bubble.bounding_box(), stage.bounding_box()
    assert box["width"] == pytest.approx(stage_box["width"] * geometry["w"], abs=2)
    # Typing saves the bubble (htmx, outerHTML): the new element is laid out at once too.
    with page.expect_response(lambda r: "/episodes/bubble/" in r.url and r.ok):
        bubble.get_by_test_id("bubble-text").fill("안녕하세요")
        bubble.get_by_test_id("bubble-text").blur()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=bubble] textarea').value === '안녕하세요'"
    )
    assert bubble.evaluate("el => parseFloat(el.style.left)") == pytest.approx(geometry["left"])
    assert watcher.violations() == []
    assert watcher.errors == []
