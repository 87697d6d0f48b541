"""An episode in a real browser: a scene added from the scene page, an uploaded picture and a
generated panel, bubbles typed and dragged in place, reordering, and the downloaded export."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from episodes.models import Bubble, Episode
from tests.characters.factories import trained_character
from tests.episodes.helpers import seed_presets
from tests.test_browser_wizard import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHELSEA = Path(__file__).resolve().parent / "testdata" / "chelsea.png"
SPEECH = "사장님, 올해 종합소득세 신고는 5월 31일까지예요!"
THOUGHT = "환급금이 ₩1,234,567이나 된다고?"
NARRATION = "그날 오후, 세무사 사무실"


def _type(page, bubble, text):
    """Type into a bubble and leave it: the change saves it (htmx), the bubble comes back."""
    with page.expect_response(lambda r: "/episodes/bubble/" in r.url and r.ok):
        bubble.get_by_test_id("bubble-text").fill(text)
        bubble.get_by_test_id("bubble-text").blur()


def _order(page) -> list[str]:
    return page.get_by_test_id("panel").evaluate_all("ps => ps.map(p => p.id)")


def test_browser_three_panel_episode_with_bubbles_and_export(
    page, live_server, settings, background_queue, monkeypatch
):
    settings.WEBTOON_OFFLINE_IMAGE_SECONDS = 0.3
    monkeypatch.setattr(
        "episodes.services.async_task", lambda func, *args, **kw: background_queue.put((func, args))
    )
    seed_presets()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    user = login(page, live_server)
    boss = trained_character(user, name="박사장")

    # 1. The scene page: make a scene, then "이 씬을 에피소드에 추가" into a new episode.
    page.goto(live_server.url + "/scenes/")
    one = page.get_by_test_id("scene-one")
    one.locator("input[name=expression]").fill("웃으며 설명")
    one.locator("input[name=location]").fill("사무실")
    one.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=scene][data-status=completed] img", timeout=30_000)
    assert page.get_by_test_id("episode-target").input_value() == "new"
    page.get_by_test_id("add-to-episode").click()
    added = page.get_by_test_id("episode-added")
    added.wait_for()
    assert "'새 에피소드 1'의 1번째 컷으로 추가했습니다." in added.inner_text()
    episode = Episode.objects.get()
    assert page.get_by_test_id("episode-target").input_value() == str(episode.public_id)
    added.get_by_role("link", name="편집하기").click()
    page.wait_for_url(f"**/episodes/{episode.public_id}/")

    # From here on the editor never reloads: the marker would be gone.
    page.evaluate("window.__noReload = true")
    header = page.get_by_test_id("episode-header")
    header.get_by_test_id("episode-title").fill("1화 종합소득세")
    with page.expect_response(lambda r: "/update/" in r.url):
        header.get_by_test_id("episode-title").blur()
    assert page.get_by_test_id("episode-preset").input_value() == "webtoon-color"
    assert "korean webtoon style" in page.get_by_test_id("preset-keywords").inner_text()

    # 2. An uploaded picture, then 3. a generated panel with the character.
    page.set_input_files("[data-testid=panel-upload] input[name=image]", str(CHELSEA))
    page.get_by_test_id("panel-upload").locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=panel]').length === 2")
    generate = page.get_by_test_id("panel-generate")
    assert generate.get_by_test_id("character-a").input_value() == str(boss.public_id)
    generate.locator("input[name=expression]").fill("놀람")
    generate.locator("input[name=location]").fill("세무서")
    generate.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=panel]').length === 3")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=panel-picture] img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length === 3",
        timeout=30_000,
    )
    panels = page.get_by_test_id("panel")
    assert "korean webtoon style" in panels.nth(2).inner_text()  # the preset joined the prompt

    # Bubbles: a speech bubble, a thought with a number, a narration box.
    panels.nth(0).get_by_test_id("add-speech").click()
    bubble = panels.nth(0).get_by_test_id("bubble")
    bubble.wait_for()
    _type(page, bubble, SPEECH)
    panels.nth(1).get_by_test_id("add-narration").click()
    panels.nth(1).get_by_test_id("bubble").wait_for()
    _type(page, panels.nth(1).get_by_test_id("bubble"), NARRATION)
    panels.nth(2).get_by_test_id("add-thought").click()
    panels.nth(2).get_by_test_id("bubble").wait_for()
    _type(page, panels.nth(2).get_by_test_id("bubble"), THOUGHT)
    assert sorted(Bubble.objects.values_list("text", flat=True)) == sorted(
        [SPEECH, THOUGHT, NARRATION]
    )

    # Drag the speech bubble by its handle, then aim its tail: both saved.
    speech = Bubble.objects.get(kind="speech")
    panels.nth(0).locator("[data-stage]").scroll_into_view_if_needed()
    stage = panels.nth(0).locator("[data-stage]").bounding_box()  # in the viewport
    handle = panels.nth(0).get_by_test_id("bubble-move").bounding_box()
    start = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    with page.expect_response(lambda r: "/episodes/bubble/" in r.url and r.ok):
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(start[0] + stage["width"] * 0.2, start[1] + stage["height"] * 0.1, steps=5)
        page.mouse.up()
    moved = Bubble.objects.get(pk=speech.pk)
    assert moved.x == pytest.approx(speech.x + 0.2, abs=0.02)
    assert moved.y == pytest.approx(speech.y + 0.1, abs=0.02)
    tail = panels.nth(0).get_by_test_id("bubble-tail").bounding_box()
    with page.expect_response(lambda r: "/episodes/bubble/" in r.url and r.ok):
        page.mouse.move(tail["x"] + 7, tail["y"] + 7)
        page.mouse.down()
        page.mouse.move(stage["x"] + stage["width"] * 0.5, stage["y"] + stage["height"] * 0.7,
                        steps=5)
        page.mouse.up()
    aimed = Bubble.objects.get(pk=speech.pk)
    assert (aimed.tail_x, aimed.tail_y) == (pytest.approx(0.5, abs=0.03),
                                            pytest.approx(0.7, abs=0.03))
    assert aimed.text == SPEECH

    # Reorder with the buttons, and a chosen height for the uploaded panel.
    ids = _order(page)
    panels.nth(0).get_by_test_id("panel-down").click()
    page.wait_for_function(f"() => document.querySelector('[data-testid=panel]').id === '{ids[1]}'")
    assert _order(page) == [ids[1], ids[0], ids[2]]
    page.get_by_test_id("panel").nth(1).get_by_test_id("panel-up").click()
    page.wait_for_function(f"() => document.querySelector('[data-testid=panel]').id === '{ids[0]}'")
    height = page.get_by_test_id("panel").nth(1).get_by_test_id("panel-height")
    with page.expect_response(lambda r: "/height/" in r.url):
        height.fill("600")
        height.blur()
    assert episode.panels.get(position=2).height == 600

    # Export, wait for the worker, download the ZIP.
    page.get_by_test_id("export-button").click()
    zip_link = page.get_by_test_id("export-zip")
    zip_link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        zip_link.click()
    assert download.value.suggested_filename == "1화 종합소득세.zip"
    with zipfile.ZipFile(download.value.path()) as zf:
        names = zf.namelist()
        images = [Image.open(io.BytesIO(zf.read(n))) for n in names]
    # 1067 (portrait scene) + 40 + 600 (chosen) + 40 + 1067 (portrait scene) = 2814 px.
    assert [im.format for im in images] == ["PNG"] * len(images)
    assert all(im.width == 800 and im.height <= 1280 for im in images)
    assert sum(im.height for im in images) == 2814
    assert [im.height for im in images] == [1087, 640, 1087]
    assert page.get_by_test_id("export-warning").count() == 0
    if keep := os.environ.get("EPISODE_EXPORT_SAMPLE"):  # to look at what the export shows
        strip = Image.new("RGB", (800, 2814), "white")
        y = 0
        for im in images:
            strip.paste(im, (0, y))
            y += im.height
        strip.save(keep)

    assert page.evaluate("window.__noReload") is True
    assert errors == []
