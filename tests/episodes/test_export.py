"""Exports: a vertical strip 800 px wide, split into images no taller than 1280 px, as PNG or
JPEG files, a ZIP and a PDF, made by the worker; a missing picture fails clearly."""

import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from episodes import services
from episodes.models import Episode, Export
from scenes.models import Scene
from tests.episodes.helpers import api, episode, uploaded_panel

pytestmark = pytest.mark.django_db


class Done:
    """An export request, and its row as the API shows it once the worker ran it."""

    def __init__(self, client, response):
        self.status_code = response.status_code
        self.response = response
        self.client = client

    def json(self):
        body = self.response.json()
        if self.status_code != 202:
            return body
        return api(self.client, "get", f"export/{body['export_id']}").json()


def export(client, capture, ep, fmt="png"):
    with capture(execute=True):  # the task is enqueued after commit, run inline (sync)
        response = api(client, "post", f"{ep.public_id}/export", {"format": fmt})
    return Done(client, response)


def near(pixel, color, tolerance=6) -> bool:
    # Uploads are re-encoded as JPEG: colours come back within a few levels.
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, color, strict=True))


def read(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def three_panels(user):
    """Portrait (auto: 1067 px), landscape (auto: 450 px), and one fixed at 600 px."""
    ep = episode(user)
    uploaded_panel(user, ep, size=(768, 1024), color=(220, 60, 60))
    uploaded_panel(user, ep, size=(1024, 576), color=(60, 200, 60))
    fixed = uploaded_panel(user, ep, size=(1024, 1024), color=(60, 60, 220))
    services.set_panel_height(owner=user, panel_id=fixed.public_id, height=600)
    return ep


def test_export_makes_an_800px_strip_split_under_1280px_with_zip_and_pdf(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = three_panels(user)
    response = export(alice_client, django_capture_on_commit_callbacks, ep)
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "succeeded" and body["error"] == "" and body["warnings"] == []
    assert (body["width"], body["max_height"]) == (800, 1280)
    # 1067 + 40 + 450 + 40 + 600 = 2197 px: cut in the middle of the first gutter
    # (1087), since cutting inside a panel is only for panels that cannot fit.
    assert body["total_height"] == 2197
    assert [(i["width"], i["height"]) for i in body["images"]] == [(800, 1087), (800, 1110)]

    first = Image.open(io.BytesIO(read(alice_client, body["images"][0]["url"])))
    assert first.format == "PNG" and first.size == (800, 1087)
    assert near(first.getpixel((400, 10)), (220, 60, 60))  # panel 1 on top
    assert first.getpixel((400, 1080)) == (255, 255, 255)  # half a gutter at the bottom
    second = Image.open(io.BytesIO(read(alice_client, body["images"][1]["url"])))
    assert near(second.getpixel((400, 30)), (60, 200, 60))  # panel 2 starts the 2nd image
    assert near(second.getpixel((400, 1100)), (60, 60, 220))  # panel 3 at the bottom

    with zipfile.ZipFile(io.BytesIO(read(alice_client, body["zip_url"]))) as zf:
        assert zf.namelist() == ["01.png", "02.png"]
        sizes = [Image.open(zf.open(n)).size for n in zf.namelist()]
    assert sizes == [(800, 1087), (800, 1110)]
    pdf = read(alice_client, body["pdf_url"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") == 2


def test_a_long_episode_is_split_at_gutters_into_images_under_the_maximum(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    for _ in range(10):  # 10 portrait panels: 10 x 1067 + 9 x 40 = 11030 px
        uploaded_panel(user, ep)
    body = export(alice_client, django_capture_on_commit_callbacks, ep).json()
    heights = [i["height"] for i in body["images"]]
    assert body["total_height"] == 11030 == sum(heights)
    assert len(heights) == 10 and all(h <= 1280 for h in heights)
    # Every cut is in a gutter: each image holds one whole panel.
    assert heights == [1087] + [1107] * 8 + [1087]


def test_a_panel_taller_than_the_maximum_is_cut_through(
    alice_client, user, django_capture_on_commit_callbacks, settings
):
    settings.EPISODE_EXPORT_MAX_HEIGHT = 1000
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    services.set_panel_height(owner=user, panel_id=panel.public_id, height=2400)
    body = export(alice_client, django_capture_on_commit_callbacks, ep).json()
    assert body["max_height"] == 1000
    assert [i["height"] for i in body["images"]] == [1000, 1000, 400]


def test_jpeg_export(alice_client, user, django_capture_on_commit_callbacks):
    ep = three_panels(user)
    body = export(alice_client, django_capture_on_commit_callbacks, ep, "jpeg").json()
    data = read(alice_client, body["images"][0]["url"])
    assert data[:2] == b"\xff\xd8"
    with zipfile.ZipFile(io.BytesIO(read(alice_client, body["zip_url"]))) as zf:
        assert zf.namelist() == ["01.jpg", "02.jpg"]


def test_export_draws_the_bubbles_and_reports_text_that_was_cut(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    panel = uploaded_panel(user, ep, color=(90, 140, 200))
    services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech",
                        text="가산세가 ₩1,234,567이라고요?")
    services.add_bubble(owner=user, panel_id=panel.public_id, kind="narration",
                        text="그날 오후 " * 80, w=0.2, h=0.05)
    body = export(alice_client, django_capture_on_commit_callbacks, ep).json()
    assert body["state"] == "succeeded"
    (warning,) = body["warnings"]
    assert warning.startswith("1번째 컷:") and "잘랐습니다" in warning
    strip = Image.open(io.BytesIO(read(alice_client, body["images"][0]["url"]))).convert("RGB")
    # The speech bubble (x 0.06-0.56, y 0.05-0.25 of 1067 px) is white where the picture
    # was blue, and has dark text in it.
    assert strip.getpixel((100, 160)) == (255, 255, 255)
    inside = strip.crop((48, 53, 448, 267))
    assert inside.convert("L").getextrema()[0] < 60


def test_an_export_whose_picture_file_is_gone_fails_clearly(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = three_panels(user)
    second = ep.panels.order_by("position")[1]
    default_storage.delete(second.image.name)
    body = export(alice_client, django_capture_on_commit_callbacks, ep).json()
    assert body["state"] == "failed"
    assert body["error"] == (
        "2번째 컷의 이미지 파일을 찾을 수 없습니다 (삭제되었을 수 있습니다). "
        "이미지를 다시 넣거나 컷을 삭제해주세요."
    )
    assert body["images"] == [] and body["zip_url"] is None and body["pdf_url"] is None
    assert api(alice_client, "get", f"export/{body['export_id']}").json()["state"] == "failed"


def test_an_export_with_a_deleted_scene_is_refused_before_queueing(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    uploaded_panel(user, ep)
    scene = Scene.objects.create(owner=user, mode="prompt", prompt="x", image_size="square",
                                 steps=28, image="u/1/gone.jpg")
    services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    scene.delete()  # from the gallery
    response = export(alice_client, django_capture_on_commit_callbacks, ep)
    assert response.status_code == 409
    assert response.json()["detail"].startswith("2번째 컷의 이미지 파일을 찾을 수 없습니다")
    assert not Export.objects.exists()


def test_an_export_with_a_panel_still_generating_is_refused(alice_client, user):
    ep = episode(user)
    scene = Scene.objects.create(owner=user, mode="prompt", prompt="x", image_size="square",
                                 steps=28)
    services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    response = api(alice_client, "post", f"{ep.public_id}/export", {"format": "png"})
    assert response.status_code == 409
    assert "1번째 컷의 이미지가 아직 생성 중입니다" in response.json()["detail"]


def test_an_empty_episode_cannot_be_exported(alice_client, user):
    ep = episode(user)
    response = api(alice_client, "post", f"{ep.public_id}/export", {"format": "png"})
    assert response.status_code == 422 and "컷이 없습니다" in response.json()["detail"]


def test_export_is_queued_after_commit_and_run_by_the_worker(
    alice_client, user, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("episodes.services.async_task", lambda *a: queued.append(a))
    ep = three_panels(user)
    with django_capture_on_commit_callbacks(execute=True):
        body = api(alice_client, "post", f"{ep.public_id}/export", {"format": "png"}).json()
    assert body["state"] == "queued"
    export_row = Export.objects.get()
    assert queued == [("episodes.tasks.run_export", export_row.pk)]
    from episodes.tasks import run_export

    assert run_export(export_row.pk) == "succeeded"
    assert run_export(export_row.pk) == "busy"  # a second delivery does nothing
    assert run_export(999999) == "missing"
    assert api(alice_client, "get", f"export/{body['export_id']}").json()["state"] == "succeeded"


def test_only_the_last_three_exports_keep_their_files(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    uploaded_panel(user, ep)
    bodies = [export(alice_client, django_capture_on_commit_callbacks, ep).json()
              for _ in range(4)]
    assert Export.objects.count() == 3
    assert alice_client.get(bodies[0]["zip_url"]).status_code == 404
    assert alice_client.get(bodies[3]["zip_url"]).status_code == 200


def test_export_files_are_404_for_another_user(
    alice_client, client, user, other_user, django_capture_on_commit_callbacks
):
    ep = three_panels(user)
    body = export(alice_client, django_capture_on_commit_callbacks, ep).json()
    client.force_login(other_user)
    assert api(client, "get", f"export/{body['export_id']}").status_code == 404
    assert client.get(body["zip_url"]).status_code == 404
    assert client.get(body["images"][0]["url"]).status_code == 404
    assert client.get(f"/episodes/export/{body['export_id']}/").status_code == 404
    assert client.get(f"/episodes/export/{body['export_id']}/download/zip/").status_code == 404


def test_an_episode_deleted_while_exporting_leaves_no_files(
    alice_client, user, django_capture_on_commit_callbacks, monkeypatch
):
    ep = three_panels(user)
    queued = []
    monkeypatch.setattr("episodes.services.async_task", lambda *a: queued.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        api(alice_client, "post", f"{ep.public_id}/export", {"format": "png"})
    store = services._store
    stored = []

    def store_then_delete(export, strip, plan):
        result = store(export, strip, plan)
        stored.extend([*result["names"], result["zip"], result["pdf"]])
        Episode.objects.filter(pk=export.episode_id).delete()  # the user deleted it meanwhile
        return result

    monkeypatch.setattr(services, "_store", store_then_delete)
    assert services.run_export(queued[0][1]) == "missing"
    assert len(stored) == 4 and not any(default_storage.exists(n) for n in stored)
