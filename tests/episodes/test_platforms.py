"""Platform presets: each exports at the platform's width and meets its limits by itself
(JPEG quality down to 70, then shorter slices), says what it did in Korean, or refuses with
the limit it cannot meet; the ZIP holds 01.jpg … in reading order with every size listed; the
preview shows the same plan before any file is made; downloads carry meaningful names."""

import dataclasses
import io
import zipfile
from urllib.parse import quote

import pytest
from PIL import Image

from episodes import platforms, rendering, services
from episodes.models import Export
from tests.episodes.helpers import api, episode, noise, noise_panel, uploaded_panel

pytestmark = pytest.mark.django_db

MB = platforms.MB


def run(client, capture, ep, **body) -> dict:
    """Export (or preview) through the API; the inline queue runs it after commit."""
    with capture(execute=True):
        response = api(client, "post", f"{ep.public_id}/export", {"format": "jpeg", **body})
    assert response.status_code == 202, response.content
    return api(client, "get", f"export/{response.json()['export_id']}").json()


def read(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def zip_entries(client, body) -> list[tuple[str, int, tuple[int, int]]]:
    with zipfile.ZipFile(io.BytesIO(read(client, body["zip_url"]))) as zf:
        return [(i.filename, i.file_size, Image.open(zf.open(i)).size) for i in zf.infolist()]


def tall_episode(user, panels=3, height=2400):
    """Portrait panels stretched to `height` px at 800: a strip far taller than any image."""
    ep = episode(user)
    for _ in range(panels):
        panel = uploaded_panel(user, ep)
        services.set_panel_height(owner=user, panel_id=panel.public_id, height=height)
    return ep


# --- too tall: every preset's width and image height ---------------------------------------------
@pytest.mark.parametrize(
    ("preset", "width", "max_height"),
    [("webtoon_canvas", 800, 1280), ("naver", 690, 1280), ("tapas", 940, 4000),
     ("original", 800, 1280)],
)
def test_a_too_tall_strip_is_sliced_at_the_presets_width_and_height(
    alice_client, user, django_capture_on_commit_callbacks, preset, width, max_height
):
    ep = tall_episode(user)  # 3 x 2400 + 2 x 40 = 7280 px at 800
    body = run(alice_client, django_capture_on_commit_callbacks, ep, preset=preset)
    assert body["state"] == "succeeded" and body["preset"] == preset
    assert (body["width"], body["max_height"]) == (width, max_height)
    heights = [i["height"] for i in body["images"]]
    assert sum(heights) == body["total_height"] == round(7200 * width / 800) + 2 * round(
        40 * width / 800)
    assert all(0 < h <= max_height for h in heights)
    assert all(i["width"] == width for i in body["images"])
    entries = zip_entries(alice_client, body)
    assert [e[0] for e in entries] == [f"{n:02d}.jpg" for n in range(1, len(heights) + 1)]
    assert [e[2] for e in entries] == [(width, h) for h in heights]
    # Each file's size is listed, and is the size of the file in the ZIP.
    assert [i["size"] for i in body["images"]] == [e[1] for e in entries]
    assert body["total_size"] == sum(e[1] for e in entries)
    assert f"{len(heights)}장" in body["summary"] and "품질 90으로 저장" in body["summary"]


def test_naver_takes_jpeg_only_and_says_so(alice_client, user, django_capture_on_commit_callbacks):
    ep = episode(user)
    uploaded_panel(user, ep)
    body = run(alice_client, django_capture_on_commit_callbacks, ep, preset="naver",
               format="png")
    assert body["format"] == "jpeg" and body["quality"] == 90
    assert "네이버 웹툰 (도전·공모)는 JPEG만 받아 JPEG로 저장합니다." in body["warnings"]
    assert read(alice_client, body["images"][0]["url"])[:2] == b"\xff\xd8"


def test_an_unknown_preset_is_refused(alice_client, user):
    ep = episode(user)
    uploaded_panel(user, ep)
    response = api(alice_client, "post", f"{ep.public_id}/export", {"preset": "lezhin"})
    assert response.status_code == 422
    assert not Export.objects.exists()


# --- too heavy: noise pictures -------------------------------------------------------------------
def test_canvas_png_noise_over_2mb_a_file_is_cut_into_shorter_slices(
    alice_client, user, django_capture_on_commit_callbacks
):
    # A 1280 px slice of colour noise is about 3 MB as PNG; PNG has no quality to lower.
    ep = episode(user)
    noise_panel(user, ep, size=(800, 1280))
    body = run(alice_client, django_capture_on_commit_callbacks, ep, preset="webtoon_canvas",
               format="png")
    assert body["state"] == "succeeded", body["error"]
    sizes = [i["size"] for i in body["images"]]
    assert len(sizes) >= 2 and all(s <= 2 * MB for s in sizes)
    assert all(i["height"] < 1280 for i in body["images"])
    assert any("2.0MB 제한에 맞추려고" in w and "짧게 나눴습니다" in w for w in body["warnings"])
    assert "PNG로 저장" in body["summary"] and f"{len(sizes)}장" in body["summary"]
    assert [e[1] for e in zip_entries(alice_client, body)] == sizes


def test_tapas_noise_over_2mb_lowers_jpeg_quality_first(
    alice_client, user, django_capture_on_commit_callbacks
):
    # Three noise panels drawn at 940 x 1645: the first slice (two panels, 3359 px, cut in
    # the gutter) is about 2.5 MB at quality 90.
    ep = episode(user)
    for seed in (1, 2, 3):
        noise_panel(user, ep, size=(940, 1645), seed=seed)
    body = run(alice_client, django_capture_on_commit_callbacks, ep, preset="tapas")
    assert body["state"] == "succeeded", body["error"]
    assert platforms.QUALITY_FLOOR <= body["quality"] < 90
    assert all(i["size"] <= 2 * MB for i in body["images"])
    assert all(i["height"] <= 4000 for i in body["images"])
    assert body["images"][0]["height"] == 2 * 1645 + 47 + 23  # still cut in the gutter
    assert f"품질 {body['quality']}{platforms.ro(body['quality'])} 저장" in body["summary"]
    assert any(f"JPEG 품질을 90에서 {body['quality']}" in w and "한 장 2.0MB 제한" in w
               for w in body["warnings"])


def test_canvas_refuses_an_episode_over_20mb_and_names_the_limit(
    alice_client, user, django_capture_on_commit_callbacks
):
    # 4 noise panels of 2400 px as PNG: about 3 MB per 1280 px, over 20 MB in all.
    ep = episode(user)
    for seed in range(4):
        panel = noise_panel(user, ep, size=(800, 2400), seed=seed)
        services.set_panel_height(owner=user, panel_id=panel.public_id, height=2400)
    body = run(alice_client, django_capture_on_commit_callbacks, ep, preset="webtoon_canvas",
               format="png")
    assert body["state"] == "failed"
    assert body["error"].startswith(
        "WEBTOON Canvas의 에피소드 전체 용량 제한(20.0MB)을 맞출 수 없습니다: PNG로는 ")
    assert body["error"].endswith("JPEG로 내보내면 품질을 낮춰 맞춥니다.")
    assert body["images"] == [] and body["zip_url"] is None  # no file the platform would refuse


# --- the fitting itself, on a strip of noise (fast: no database) ---------------------------------
def noise_strip(height=2560, width=800) -> Image.Image:
    return Image.open(io.BytesIO(noise((width, height), fmt="PNG"))).convert("RGB")


def cutter(strip, gutters=()):
    def cut(start, end, max_height):
        return rendering.slice_ranges(end, gutters, max_height, start=start)
    return cut


def test_fit_steps_quality_down_to_meet_the_episode_limit():
    strip = noise_strip()
    at_90 = sum(len(rendering.encode(p, "jpeg", 90))
                for p in rendering.slice_strip(strip, [(0, 1280), (1280, 2560)]))
    tight = dataclasses.replace(platforms.PLATFORMS["webtoon_canvas"],
                                max_total_bytes=int(at_90 * 0.8))
    plan = platforms.fit(strip, tight, "jpeg", 1280, cutter(strip))
    assert 70 <= plan.quality < 90 and plan.total <= tight.max_total_bytes
    assert plan.ranges == [(0, 1280), (1280, 2560)]  # quality, not slicing, fixes a total
    assert plan.notes[0].startswith("전체 ")
    assert f"90에서 {plan.quality}{platforms.ro(plan.quality)} 낮췄습니다" in plan.notes[0]
    assert "품질 " in plan.summary(tight, 800) and "2장" in plan.summary(tight, 800)


def test_fit_never_goes_below_quality_70_and_refuses_naming_the_limit():
    strip = noise_strip()
    tiny = dataclasses.replace(platforms.PLATFORMS["naver"], max_total_bytes=200_000)
    with pytest.raises(platforms.LimitUnmet) as exc:
        platforms.fit(strip, tiny, "jpeg", 1280, cutter(strip))
    assert "네이버 웹툰 (도전·공모)의 에피소드 전체 용량 제한(200KB)" in str(exc.value)
    assert "JPEG 품질 70으로도 1." in str(exc.value)


def test_fit_slices_shorter_only_after_quality_reaches_the_floor():
    strip = noise_strip()
    at_70 = len(rendering.encode(strip.crop((0, 0, 800, 1280)), "jpeg", 70))
    small = dataclasses.replace(platforms.PLATFORMS["webtoon_canvas"],
                                max_image_bytes=int(at_70 * 0.6))
    plan = platforms.fit(strip, small, "jpeg", 1280, cutter(strip))
    assert plan.quality == 70
    assert len(plan.files) > 2 and all(s <= small.max_image_bytes for s in plan.sizes)
    heights = [b - t for t, b in plan.ranges]
    assert max(heights) - min(heights) <= 400  # about equal pieces, no sliver
    assert "더 짧게 나눴습니다: 2장 → " in plan.notes[-1]
    assert plan.ranges[0][0] == 0 and plan.ranges[-1][1] == 2560
    assert all(a[1] == b[0] for a, b in zip(plan.ranges, plan.ranges[1:], strict=False))


def test_fit_refuses_a_file_limit_no_slice_can_meet():
    strip = noise_strip()
    impossible = dataclasses.replace(platforms.PLATFORMS["tapas"], max_image_bytes=10_000)
    with pytest.raises(platforms.LimitUnmet) as exc:
        platforms.fit(strip, impossible, "jpeg", 4000, cutter(strip))
    assert "Tapas의 한 장 용량 제한(10KB)을 맞출 수 없습니다" in str(exc.value)


# --- the preview ---------------------------------------------------------------------------------
def test_preview_plans_the_export_without_making_files(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = tall_episode(user, panels=2)
    preview = run(alice_client, django_capture_on_commit_callbacks, ep, preset="webtoon_canvas",
                  preview=True)
    assert preview["preview"] and preview["state"] == "succeeded"
    assert preview["zip_url"] is None and preview["pdf_url"] is None
    assert all(i["url"] is None for i in preview["images"])
    scaled = Image.open(io.BytesIO(read(alice_client, preview["preview_url"])))
    assert scaled.width == rendering.PREVIEW_WIDTH
    assert abs(scaled.height - preview["total_height"] * scaled.width / 800) <= 1
    # The export then makes exactly what the preview showed.
    done = run(alice_client, django_capture_on_commit_callbacks, ep, preset="webtoon_canvas")
    assert [(i["top"], i["height"]) for i in done["images"]] == [
        (i["top"], i["height"]) for i in preview["images"]]
    assert done["quality"] == preview["quality"] and done["summary"] == preview["summary"]


def test_the_editor_shows_the_preview_with_slice_lines_and_sizes(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = tall_episode(user, panels=2)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/episodes/{ep.public_id}/export/",
                          {"preset": "naver", "format": "jpeg", "preview": "1"},
                          HTTP_HX_REQUEST="true")
    html = alice_client.get(f"/episodes/{ep.public_id}/export/status/").content.decode()
    preview = Export.objects.get(preview=True)
    assert 'data-testid="strip-preview"' in html and preview.preview_file.name in html
    assert html.count('data-testid="preview-slice"') == len(preview.images) >= 4
    assert html.count("ep-slice ep-cut") == len(preview.images) - 1
    assert f'data-strip-height="{preview.total_height}"' in html
    for number, image in enumerate(preview.images, 1):
        assert f"{number:02d}.jpg</code> 690×{image['height']}" in html
        assert platforms.human_size(image["size"]) in html
    assert "네이버 웹툰 (도전·공모) · 가로 690px · 품질 90으로 저장" in html
    assert not Export.objects.filter(preview=False).exists()  # nothing exported yet


def test_a_preview_that_cannot_meet_a_limit_says_why_before_exporting(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    for seed in range(4):
        panel = noise_panel(user, ep, size=(800, 2400), seed=seed)
        services.set_panel_height(owner=user, panel_id=panel.public_id, height=2400)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/episodes/{ep.public_id}/export/",
                          {"preset": "webtoon_canvas", "format": "png", "preview": "1"},
                          HTTP_HX_REQUEST="true")
    html = alice_client.get(f"/episodes/{ep.public_id}/export/status/").content.decode()
    assert 'data-testid="preview-failed"' in html
    assert "이대로는 내보낼 수 없습니다: WEBTOON Canvas의 에피소드 전체 용량 제한(20.0MB)" in html


# --- names ---------------------------------------------------------------------------------------
def test_downloads_are_named_after_the_episode(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user, title="에피소드1")
    uploaded_panel(user, ep)
    body = run(alice_client, django_capture_on_commit_callbacks, ep, format="png")
    assert body["images"][0]["filename"] == "에피소드1_01.png"
    response = alice_client.get(f"/episodes/export/{body['export_id']}/image/1/")
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=utf-8''{quote('에피소드1_01.png')}" in disposition
    assert b"".join(response.streaming_content)[:4] == b"\x89PNG"
    zipped = alice_client.get(f"/episodes/export/{body['export_id']}/download/zip/")
    assert f"filename*=utf-8''{quote('에피소드1.zip')}" in zipped["Content-Disposition"]
    assert alice_client.get(f"/episodes/export/{body['export_id']}/image/2/").status_code == 404


def test_titles_with_spaces_and_slashes_make_safe_file_names(user):
    ep = episode(user, title='1화 / 종합소득세: "신고"')
    export = Export(episode=ep, owner=user, format="jpeg", width=800, max_height=1280)
    assert services.download_name(export, "image", 3) == "1화_종합소득세_신고_03.jpg"
    assert services.download_name(export, "pdf") == "1화_종합소득세_신고.pdf"
