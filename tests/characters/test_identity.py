"""Identity on every image of a character (issue 16) and the composed reference sheet.

Images are measured against the character's photo (its anchor); the fal fake draws the
LoRA's person (astronaut.png) for LoRA inference and a stranger below its weak scale."""

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from characters import checks, likeness, reference_sheet
from characters.models import Character, CreationSession, Cut
from tests.characters.factories import trained_character
from tests.characters.test_curation import TESTDATA, astronaut_photo
from tests.characters.test_training import make_session

pytestmark = pytest.mark.django_db


def png_of(name: str, size=None) -> bytes:
    with Image.open(TESTDATA / name) as im:
        im = im.convert("RGB")
        if size:
            im = im.resize(size)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=92)
        return buf.getvalue()


# --- the verdicts -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "distance, verdict, near_copy",
    [(0.05, "same", True), (0.18, "same", True), (0.2, "same", False), (0.6, "same", False),
     (0.62, "unsure", False), (0.65, "unsure", False), (0.694, "different", False),
     (None, "no_face", False)],
)
def test_verdicts_follow_the_measured_thresholds(distance, verdict, near_copy):
    assert likeness.result(distance) == {
        "distance": distance, "verdict": verdict, "near_copy": near_copy
    }


def test_words_say_the_verdict_and_drawn_styles_say_why_there_is_no_number():
    assert likeness.words(likeness.result(0.3)) == "닮음 · 높음"
    assert likeness.words(likeness.result(0.1)) == "닮음 · 높음 · 사진과 거의 같음"
    assert likeness.words(likeness.result(0.8)) == "닮지 않음 · 낮음"
    assert likeness.words(likeness.result(None)) == "얼굴을 찾지 못함"
    assert likeness.words(likeness.result(None), drawn=True) == (
        "그림체라 얼굴을 찾지 못해 닮음을 재지 않았습니다"
    )
    assert likeness.words(None) == "닮음 측정 안 됨"
    assert likeness.words(None, no_anchor=True) == "닮음 측정 불가 (원본 사진에서 얼굴을 찾지 못함)"


# --- cuts ---------------------------------------------------------------------------------------
def session_with_cuts(user, style, images):
    session = make_session(user, cuts=len(images), style=style)
    session.photo = astronaut_photo(user)
    session.save(update_fields=["photo"])
    for cut, data in zip(session.cuts.order_by("number"), images, strict=True):
        cut.image.save(f"u/{user.pk}/cuts/id-{cut.number}.jpg", ContentFile(data))
    return session


def test_cut_identity_against_the_photo_on_the_check_and_the_page(alice_client, user):
    session = session_with_cuts(user, "original", [
        png_of("astronaut.png"),  # the photo again: a near-copy
        png_of("grace_hopper.jpg"),  # somebody else
        png_of("chelsea.png"),  # no face
    ])
    for cut in session.cuts.all():
        checks.check_cut(cut.pk)
    copy, other, cat = Cut.objects.filter(session=session).order_by("number")
    assert copy.identity["verdict"] == "same" and copy.identity["near_copy"] is True
    assert other.identity["verdict"] == "different" and other.identity["distance"] > 0.65
    assert cat.identity == {"distance": None, "verdict": "no_face", "near_copy": False}
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert "닮음 · 높음 · 사진과 거의 같음" in page and "닮지 않음 · 낮음" in page
    assert "얼굴을 찾지 못함" in page


def test_drawn_style_cut_without_a_face_says_so_instead_of_a_number(alice_client, user):
    session = session_with_cuts(user, "simple_lineart", [png_of("chelsea.png")])
    checks.check_cut(session.cuts.get().pk)
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert "그림체라 얼굴을 찾지 못해 닮음을 재지 않았습니다" in page


# --- test-generate results ----------------------------------------------------------------------
@pytest.mark.parametrize("scale, verdict, words", [
    (0.8, "same", "닮음 · 높음"),
    (0.5, "different", "닮지 않음 · 낮음"),  # too weak: the fake draws a stranger
])
def test_test_generate_result_carries_its_identity(
    alice_client, user, fal, django_capture_on_commit_callbacks, scale, verdict, words
):
    character = trained_character(user)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/api/character/{character.public_id}/test-generate",
                          {"prompt": "smiling", "scale": scale}, content_type="application/json")
    (item,) = alice_client.get(f"/api/character/{character.public_id}/gallery").json()
    assert item["identity"]["verdict"] == verdict and item["identity_words"].startswith(words)
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert 'data-testid="gallery-identity"' in page and words in page


# --- the reference sheet ------------------------------------------------------------------------
@pytest.fixture
def sheet_character(user, fal, settings):
    """A character packaged from 6 of a 7-cut session (the ZIP's captions name each cut)."""
    from characters import training

    settings.MIN_SELECTED_CUTS = 1
    session = make_session(user, cuts=7, unselected=(2,))
    character = training.prepare_training_data(
        owner=user, session_id=session.public_id, character_name="박사장"
    )
    Character.objects.filter(pk=character.pk).update(status="active")
    character.refresh_from_db()
    return character


def test_reference_sheet_is_a_labelled_grid_of_the_selected_cuts(sheet_character):
    items = reference_sheet.sheet_items(sheet_character)
    cuts = CreationSession.objects.get(pk=sheet_character.session_id).cuts.filter(selected=True)
    assert [(i.number, i.label, i.category) for i in items] == [
        (c.number, c.label_ko, c.get_category_display()) for c in cuts.order_by("number")
    ]
    name = reference_sheet.build_and_store(sheet_character)
    with default_storage.open(name, "rb") as fh, Image.open(fh) as sheet:
        assert sheet.format == "PNG"
        # 5 columns of 240 px cells under a header: 6 cuts take two rows.
        assert sheet.size == (5 * 240 + 6 * 12, 96 + 2 * (240 + 54 + 12) + 12)


def test_reference_sheet_on_the_page_in_the_api_and_in_the_backup_zip(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    with django_capture_on_commit_callbacks(execute=True):  # built once the page is seen
        page = alice_client.get(character.get_absolute_url()).content.decode()
    character.refresh_from_db()
    assert character.reference_sheet.name.endswith(".png")
    url = alice_client.get(f"/api/character/{character.public_id}").json()["reference_sheet_url"]
    assert url and url.endswith(".png") and not url.endswith(".zip")
    response = alice_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert 'data-testid="reference-sheet"' in page and url in page

    backup = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    with zipfile.ZipFile(io.BytesIO(b"".join(backup.streaming_content))) as zf:
        names = zf.namelist()
        sheet = zf.read("reference_sheet.png")
    assert names.index("reference_sheet.png") == names.index("reference_sheet/03.jpg") + 1
    with default_storage.open(character.reference_sheet.name, "rb") as fh:
        assert sheet == fh.read()
    assert Image.open(io.BytesIO(sheet)).format == "PNG"


def test_a_backup_with_the_sheet_restores_and_the_sheet_is_drawn_again(
    alice_client, user, other_user, fal, client, django_capture_on_commit_callbacks
):
    character = trained_character(user)
    backup = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    data = b"".join(backup.streaming_content)
    assert "reference_sheet.png" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    client.force_login(other_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/character/restore-from-backup",
                               {"backup": ContentFile(data, name="b.zip")})
    assert response.status_code in (200, 201), response.content
    restored = Character.objects.get(owner=other_user)
    assert restored.reference_sheet.name.endswith(".png")


def test_the_curation_page_warns_when_several_selected_cuts_copy_the_photo(alice_client, user):
    session = session_with_cuts(user, "original", [
        png_of("astronaut.png"), png_of("astronaut.png", size=(500, 500)),
        png_of("grace_hopper.jpg"),
    ])
    for cut in session.cuts.all():
        checks.check_cut(cut.pk)
    session.cuts.update(selected=True)  # the user keeps them all
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert 'data-testid="near-copy-warning"' in page
    assert "선택한 컷 중 2장이 원본 사진과 거의 같습니다." in page
    session.cuts.filter(number=1).update(selected=False)
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert 'data-testid="near-copy-warning"' not in page
