"""An episode in a real browser: a scene added from the scene page, an uploaded picture and a
generated panel, bubbles typed and dragged in place, reordering, and the downloaded export."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from episodes import services
from episodes.models import Bubble, Episode
from tests.characters.factories import trained_character
from tests.episodes.helpers import episode, seed_presets
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


def _settled(page) -> None:
    """The saved bubble's answer has replaced it (htmx swaps after the response arrives: a
    box read in between finds the old element detached and no box)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


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
    _settled(page)
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
    _settled(page)
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

    # The WEBTOON Canvas preset: first the whole-strip preview, then the export.
    export = page.get_by_test_id("export")
    assert export.get_by_test_id("export-preset").input_value() == "webtoon_canvas"
    assert "한 장 2.0MB 이하" in export.get_by_test_id("preset-limits").inner_text()
    export.get_by_test_id("export-format").select_option("jpeg")
    export.get_by_test_id("preview-button").click()
    preview = page.locator("[data-testid=strip-preview][data-state=succeeded]")
    preview.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=preview-strip] img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    # 1067 (portrait scene) + 40 + 600 (chosen) + 40 + 1067 (portrait scene) = 2814 px,
    # cut in the two gutters: three slices, two dashed lines, each with its file size.
    slices = preview.get_by_test_id("preview-slice")
    assert slices.count() == 3 and preview.locator(".ep-cut").count() == 2
    strip_box = preview.get_by_test_id("preview-strip").bounding_box()
    second = slices.nth(1).bounding_box()
    assert second["y"] - strip_box["y"] == pytest.approx(strip_box["height"] * 1087 / 2814, abs=3)
    assert "품질 90으로 저장, 3장" in preview.get_by_test_id("preview-summary").inner_text()
    preview.scroll_into_view_if_needed()
    _shot(page, "canvas-preview-1280")
    files = preview.get_by_test_id("preview-file")
    assert files.count() == 3 and "01.jpg" in files.nth(0).inner_text()
    assert all("KB" in files.nth(i).inner_text() or "MB" in files.nth(i).inner_text()
               for i in range(3))

    page.get_by_test_id("export-button").click()
    zip_link = page.get_by_test_id("export-zip")
    zip_link.wait_for(timeout=30_000)
    assert "WEBTOON Canvas" in page.get_by_test_id("export-summary").inner_text()
    listed = page.get_by_test_id("export-file")
    assert listed.count() == 3 and "1화_종합소득세_01.jpg" in listed.nth(0).inner_text()
    with page.expect_download() as download:
        zip_link.click()
    assert download.value.suggested_filename == "1화_종합소득세.zip"
    with zipfile.ZipFile(download.value.path()) as zf:
        names = zf.namelist()
        infos = zf.infolist()
        images = [Image.open(io.BytesIO(zf.read(n))) for n in names]
    assert names == ["01.jpg", "02.jpg", "03.jpg"]
    assert [im.format for im in images] == ["JPEG"] * len(images)
    assert all(im.width == 800 and im.height <= 1280 for im in images)
    assert all(info.file_size <= 2_000_000 for info in infos)
    assert sum(im.height for im in images) == 2814
    assert [im.height for im in images] == [1087, 640, 1087]
    assert page.get_by_test_id("export-warning").count() == 0
    with page.expect_download() as one:
        listed.nth(1).locator("a").click()
    assert one.value.suggested_filename == "1화_종합소득세_02.jpg"
    if keep := os.environ.get("EPISODE_EXPORT_SAMPLE"):  # to look at what the export shows
        strip = Image.new("RGB", (800, 2814), "white")
        y = 0
        for im in images:
            strip.paste(im, (0, y))
            y += im.height
        strip.save(keep)

    assert page.evaluate("window.__noReload") is True
    assert errors == []


def _shot(page, name):
    """Screenshots to look at (EPISODE_SCREENSHOTS=<folder>); the test never depends on them."""
    if folder := os.environ.get("EPISODE_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _overlap(a, b) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


@pytest.mark.parametrize("viewport", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_browser_lettering_kinds_emoji_and_free_places(page, live_server, viewport):
    seed_presets()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    user = login(page, live_server)
    ep = episode(user, title="에피소드1")
    upload = SimpleUploadedFile("c.png", CHELSEA.read_bytes(), content_type="image/png")
    panel = services.upload_panel(owner=user, episode_id=ep.public_id, upload=upload)
    page.goto(f"{live_server.url}/episodes/{ep.public_id}/")
    stage = page.get_by_test_id("panel").first

    # Five new bubbles, none on top of another, each kind in its own shape.
    for kind in ("speech", "speech", "shout", "thought", "whisper"):
        count = stage.get_by_test_id("bubble").count()
        stage.get_by_test_id(f"add-{kind}").click()
        page.wait_for_function(
            f"() => document.querySelectorAll('[data-testid=bubble]').length === {count + 1}")
    shapes = [stage.locator(".ep-shape").nth(i).bounding_box() for i in range(5)]
    assert not [(i, j) for i in range(5) for j in range(i + 1, 5)
                if _overlap(shapes[i], shapes[j])]
    kinds = stage.get_by_test_id("bubble").evaluate_all("bs => bs.map(b => b.dataset.kind)")
    assert kinds == ["speech", "speech", "shout", "thought", "whisper"]
    shout_bg = stage.locator(".ep-shout .ep-shape").evaluate(
        "e => getComputedStyle(e).backgroundImage")
    assert "bubble-shout.svg" in shout_bg
    assert stage.locator(".ep-whisper .ep-shape").evaluate(
        "e => getComputedStyle(e).borderTopStyle") == "dashed"

    # Emoji in a bubble: the rendering preview draws them in colour.
    first = stage.get_by_test_id("bubble").first
    _type(page, first, "좋아요 😀👍")
    bubble = Bubble.objects.filter(panel=panel).order_by("position").first()
    response = page.request.get(f"{live_server.url}/episodes/panel/{panel.public_id}/preview.png")
    rendered = Image.open(io.BytesIO(response.body())).convert("RGB")
    box = (bubble.x * 800, bubble.y * rendered.height, (bubble.x + bubble.w) * 800,
           (bubble.y + bubble.h) * rendered.height)
    colourful = [p for p in rendered.crop(tuple(map(round, box))).get_flattened_data()
                 if max(p) - min(p) > 120 and min(p) < 100]
    assert len(colourful) > 50

    # Too much text: the bubble grows to hold it at 18 px or more, and the editor says so.
    before = Bubble.objects.get(pk=bubble.pk)
    long = "사장님, 이번 달 부가세 신고 마감이 내일이에요! " * 5
    _type(page, stage.get_by_test_id("bubble").first, long)
    grown = Bubble.objects.get(pk=bubble.pk)
    assert grown.w * grown.h > before.w * before.h
    note = stage.get_by_test_id("bubble").first.get_by_test_id("fit-note")
    assert "px" in note.inner_text()
    _shot(page, f"editor-{viewport[0]}x{viewport[1]}")

    # The preview for the Canvas preset, on this screen.
    page.get_by_test_id("preview-button").click()
    page.locator("[data-testid=strip-preview][data-state=succeeded]").wait_for(timeout=30_000)
    frame = page.locator(".ep-preview-frame").bounding_box()
    assert frame["width"] <= viewport[0]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
    page.get_by_test_id("strip-preview").scroll_into_view_if_needed()
    _shot(page, f"preview-{viewport[0]}x{viewport[1]}")
    assert errors == []
