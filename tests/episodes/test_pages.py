"""The episode pages: list, editor and its htmx partials (no page reloads)."""

import io

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from episodes import services
from episodes.models import Bubble, Episode
from tests.characters.factories import trained_character
from tests.episodes.helpers import LORA, episode, upload, uploaded_panel

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def test_nav_links_to_episodes(alice_client):
    assert '<a href="/episodes/">에피소드</a>' in alice_client.get("/").content.decode()


def test_episode_list_creates_an_episode_with_a_preset(alice_client, user):
    page = alice_client.get("/episodes/").content.decode()
    assert all(name in page for name in ("웹툰 컬러", "흑백 만화", "수채화", "플랫 일러스트"))
    response = alice_client.post("/episodes/new/", {"title": "  2화  환급 ", "preset": "flat"})
    ep = Episode.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/episodes/{ep.public_id}/"
    assert ep.title == "2화 환급" and ep.preset.slug == "flat" and ep.owner == user
    refused = alice_client.post("/episodes/new/", {"title": " ", "preset": "flat"})
    assert refused.status_code == 422 and "제목을 입력해주세요" in refused.content.decode()


def test_editor_shows_panels_bubbles_and_the_presets_keywords(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep, size=(1000, 500))
    services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech", text="안녕하세요",
                        x=0.125, y=0.25)
    html = alice_client.get(f"/episodes/{ep.public_id}/").content.decode()
    # Geometry travels in data-* attributes (no style attributes under the CSP; episodes.js).
    assert 'data-testid="panel"' in html and 'data-height="400"' in html
    assert 'data-x="0.125" data-y="0.25"' in html
    assert ">안녕하세요</textarea>" in html
    assert "korean webtoon style" in html
    assert '/static/js/episodes.js' in html and "<script>" not in html


@pytest.mark.parametrize("count", [1, 3])
def test_editor_query_count_does_not_grow_with_panels(alice_client, user, count):
    ep = episode(user)
    for _ in range(count):
        panel = uploaded_panel(user, ep)
        services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech", text="대사")
    with CaptureQueriesContext(connection) as queries:
        assert alice_client.get(f"/episodes/{ep.public_id}/").status_code == 200
    assert len(queries) <= 14


def test_bubble_edits_save_without_a_reload(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    html = alice_client.post(f"/episodes/panel/{panel.public_id}/bubbles/", {"kind": "thought"},
                             **HX).content.decode()
    bubble = Bubble.objects.get()
    assert html.strip().startswith('<div class="ep-bubble ep-thought"')
    assert f'id="bubble-{bubble.public_id}"' in html
    html = alice_client.post(
        f"/episodes/bubble/{bubble.public_id}/",
        {"text": "이번 달 부가세가 ₩1,234,567?", "x": "0.3", "y": "0.6", "w": "0.5", "h": "0.2",
         "tail_x": "0.4", "tail_y": "0.95"}, **HX,
    ).content.decode()
    bubble.refresh_from_db()
    assert bubble.text == "이번 달 부가세가 ₩1,234,567?"
    assert (bubble.x, bubble.y, bubble.w, bubble.h) == (0.3, 0.6, 0.5, 0.2)
    assert (bubble.tail_x, bubble.tail_y) == (0.4, 0.95)
    assert 'data-x="0.3" data-y="0.6" data-w="0.5" data-h="0.2"' in html
    bigger = alice_client.post(f"/episodes/bubble/{bubble.public_id}/", {"font_size": "40"}, **HX)
    assert 'name="font_size" min="18" max="72" value="40"' in bigger.content.decode()
    long = alice_client.post(f"/episodes/bubble/{bubble.public_id}/", {"text": "가나다 " * 120},
                             **HX).content.decode()
    # Too much text for the bubble even at 18 px: the bubble grows (centred) to take it, and
    # the editor warns that the lettering is close to the minimum.
    grown = Bubble.objects.get()
    assert grown.w > 0.5 and grown.h > 0.2
    assert 'data-testid="fit-note"' in long and "작아졌습니다 (최소 18px)" in long
    assert alice_client.post(f"/episodes/bubble/{bubble.public_id}/delete/", **HX).content == b""
    assert not Bubble.objects.exists()


def test_panel_actions_return_partials(alice_client, user):
    ep = episode(user)
    first, second = uploaded_panel(user, ep), uploaded_panel(user, ep)
    html = alice_client.post(f"/episodes/panel/{second.public_id}/move/", {"offset": "-1"},
                             **HX).content.decode()
    assert html.strip().startswith('<ol id="panels"')
    assert html.index(str(second.public_id)) < html.index(str(first.public_id))
    html = alice_client.post(f"/episodes/panel/{first.public_id}/height/", {"height": "700"},
                             **HX).content.decode()
    assert html.strip().startswith(f'<li class="ep-panel panel" id="panel-{first.public_id}"')
    assert 'data-height="700"' in html and 'data-number="2"' in html
    refused = alice_client.post(f"/episodes/panel/{first.public_id}/height/", {"height": "5"},
                                **HX)
    assert refused["HX-Retarget"] == "#editor-error" and refused["HX-Reswap"] == "innerHTML"
    assert "200~2400px" in refused.content.decode()
    html = alice_client.post(f"/episodes/panel/{second.public_id}/delete/", **HX).content.decode()
    assert str(second.public_id) not in html and 'data-number="1"' in html


def test_upload_from_the_editor(alice_client, user):
    ep = episode(user)
    html = alice_client.post(f"/episodes/{ep.public_id}/panels/upload/",
                             {"image": upload(size=(800, 600))}, **HX).content.decode()
    assert 'data-status="ready"' in html and 'data-height="600"' in html
    refused = alice_client.post(f"/episodes/{ep.public_id}/panels/upload/", {}, **HX)
    assert refused["HX-Retarget"] == "#editor-error"
    assert "이미지 파일을 선택해주세요" in refused.content.decode()


def test_generate_from_the_editor_adds_panels_with_the_preset(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    boss = trained_character(user)
    ep = episode(user, preset="manga-bw")
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            f"/episodes/{ep.public_id}/panels/generate/",
            {"character_a": str(boss.public_id), "character_b": "", "expression": "놀람",
             "location": "세무서", "count": "2", "image_size": "portrait_4_3"}, **HX,
        ).content.decode()
    assert html.count('data-testid="panel"') == 2
    prompts = [r.arguments["prompt"] for r in fal.submitted(LORA)]
    manga = "black and white manga style, monochrome ink drawing, screentone shading"
    assert prompts == [f"{boss.trigger_word}, surprised expression, tax office, {manga}"] * 2
    image = alice_client.get(f"/episodes/panel/{ep.panels.first().public_id}/image/", **HX)
    assert "<img" in image.content.decode()


def test_preview_is_the_exported_panel(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep, size=(1024, 576))
    services.add_bubble(owner=user, panel_id=panel.public_id, kind="caption", text="5월 31일")
    response = alice_client.get(f"/episodes/panel/{panel.public_id}/preview.png")
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (800, 450)


def test_export_from_the_editor_polls_until_done(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    uploaded_panel(user, ep)
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(f"/episodes/{ep.public_id}/export/", {"format": "png"},
                                 **HX).content.decode()
    assert 'data-state="queued"' in html and 'hx-trigger="every 1s"' in html
    export = ep.exports.get()
    html = alice_client.get(f"/episodes/export/{export.public_id}/", **HX).content.decode()
    assert 'data-state="succeeded"' in html and "every 1s" not in html
    assert 'data-testid="export-zip"' in html
    download = alice_client.get(f"/episodes/export/{export.public_id}/download/zip/")
    assert download["Content-Disposition"].startswith("attachment;")
    assert "1%ED%99%94" in download["Content-Disposition"]  # 1화, RFC 5987-encoded
    pdf = alice_client.get(f"/episodes/export/{export.public_id}/download/pdf/")
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert alice_client.get(f"/episodes/export/{export.public_id}/download/exe/").status_code == 404


def test_export_from_the_editor_says_why_it_cannot_start(alice_client, user):
    ep = episode(user)
    html = alice_client.post(f"/episodes/{ep.public_id}/export/", {"format": "png"},
                             **HX).content.decode()
    assert 'data-testid="export-error"' in html and "컷이 없습니다" in html


def test_title_and_preset_save_from_the_header(alice_client, user):
    ep = episode(user)
    html = alice_client.post(f"/episodes/{ep.public_id}/update/",
                             {"title": "3화", "preset": "watercolor"}, **HX).content.decode()
    ep.refresh_from_db()
    assert ep.title == "3화" and ep.preset.slug == "watercolor"
    assert "soft watercolor illustration" in html
    alice_client.post(f"/episodes/{ep.public_id}/update/", {"title": "3화", "preset": ""}, **HX)
    ep.refresh_from_db()
    assert ep.preset is None


def test_deleting_an_episode_removes_its_uploads(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    name = uploaded_panel(user, ep).image.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/episodes/{ep.public_id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/episodes/"
    assert not Episode.objects.exists() and not default_storage.exists(name)
