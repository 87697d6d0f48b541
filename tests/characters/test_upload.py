"""Step 1, photo upload: what is accepted (by content), what is refused, and what is stored."""

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.shortcuts import resolve_url
from django.test import Client
from PIL import Image, ImageCms

from characters import photos
from characters.models import Photo

pytestmark = pytest.mark.django_db

URL = "/api/character/upload-photo"
TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
UNSUPPORTED = "JPG, PNG, WEBP만 지원합니다"
LOW_RES = "최소 512×512 이상 권장합니다"
NO_FACE = "얼굴을 찾지 못했습니다. 정면 얼굴 사진을 권장합니다."
NO_CONSENT = "사진 사용 권리에 동의해주세요"


# --- helpers --------------------------------------------------------------------------------
def image_bytes(fmt="JPEG", size=(800, 600), mode="RGB", color=(200, 150, 100), **save):
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt, **save)
    return buf.getvalue()


def upload(client, data, name="photo.jpg", content_type="image/jpeg", consent="true"):
    payload = {"photo": SimpleUploadedFile(name, data, content_type=content_type)}
    if consent is not None:
        payload["consent"] = consent
    return client.post(URL, payload)


def media_files():
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def stored_image(photo_url):
    name = photo_url.removeprefix("/media/")
    with default_storage.open(name, "rb") as f:
        data = f.read()
    return Image.open(io.BytesIO(data)), data


def png_header_only(width, height):
    """A ~70-byte PNG whose header claims width×height (a decompression bomb's calling card)."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def nothing_stored():
    """Asserts after the test that no Photo row and no media file were created."""
    before = media_files()
    yield
    assert Photo.objects.count() == 0
    assert media_files() == before


# --- accepted -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "size", "name", "content_type"),
    [
        ("JPEG", (768, 1024), "me.jpg", "image/jpeg"),
        ("PNG", (800, 600), "me.png", "image/png"),
        ("WEBP", (1024, 768), "me.webp", "image/webp"),
    ],
)
def test_upload_accepts_jpeg_png_webp_with_their_resolution(
    alice_client, user, fmt, size, name, content_type
):
    response = upload(alice_client, image_bytes(fmt, size), name, content_type)

    assert response.status_code == 201
    body = response.json()
    photo = Photo.objects.get()
    assert body == {
        "photo_id": str(photo.public_id),
        "photo_url": f"/media/{photo.image.name}",
        "resolution": f"{size[0]}x{size[1]}",
        "face_detected": False,
        "warnings": [NO_FACE],
    }
    assert body["photo_url"].startswith(f"/media/u/{user.pk}/photos/")
    assert (photo.owner, photo.source_format, photo.resolution) == (user, fmt, body["resolution"])
    assert photo.consent_at is not None
    image, _ = stored_image(body["photo_url"])
    assert (image.format, image.size) == ("JPEG", size)


def test_owner_can_fetch_the_stored_photo(alice_client):
    url = upload(alice_client, image_bytes()).json()["photo_url"]

    response = alice_client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (800, 600)


def test_png_renamed_to_jpg_is_judged_by_content(alice_client):
    response = upload(alice_client, image_bytes("PNG"), "photo.jpg", "image/jpeg")

    assert response.status_code == 201
    assert Photo.objects.get().source_format == "PNG"


def test_jpeg_sent_as_image_png_is_judged_by_content(alice_client):
    response = upload(alice_client, image_bytes("JPEG"), "photo.png", "image/png")

    assert response.status_code == 201
    assert Photo.objects.get().source_format == "JPEG"


def test_small_photo_is_accepted_with_a_resolution_warning(alice_client):
    response = upload(alice_client, image_bytes(size=(300, 300)))

    assert response.status_code == 201
    assert response.json()["resolution"] == "300x300"
    assert response.json()["warnings"] == [LOW_RES, NO_FACE]


def test_photo_with_a_face_is_detected(alice_client):
    data = (TESTDATA / "astronaut.png").read_bytes()

    response = upload(alice_client, data, "astronaut.png", "image/png")

    assert response.status_code == 201
    body = response.json()
    assert (body["resolution"], body["face_detected"], body["warnings"]) == ("512x512", True, [])
    box = Photo.objects.get().face_box
    assert box["w"] > 50 and box["h"] > 50
    assert 0 <= box["x"] < box["x"] + box["w"] <= 512
    assert 0 <= box["y"] < box["y"] + box["h"] <= 512


def test_photo_of_a_cat_has_no_face_and_a_warning(alice_client):
    data = (TESTDATA / "chelsea.png").read_bytes()

    response = upload(alice_client, data, "chelsea.png", "image/png")

    assert response.status_code == 201
    body = response.json()
    assert body["face_detected"] is False
    assert body["warnings"] == [LOW_RES, NO_FACE]  # 451×300 is also small
    assert Photo.objects.get().face_box is None


def test_exif_orientation_is_applied_and_exif_with_gps_is_dropped(alice_client):
    im = Image.new("RGB", (400, 200), (255, 0, 0))
    im.paste((0, 0, 255), (200, 0, 400, 200))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 0.0), 3: "E", 4: (126.0, 58.0, 0.0)}
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, comment=b"secret note")
    assert Image.open(io.BytesIO(buf.getvalue())).getexif().get_ifd(0x8825)  # GPS is in

    response = upload(alice_client, buf.getvalue())

    assert response.status_code == 201
    assert response.json()["resolution"] == "200x400"
    stored, raw = stored_image(response.json()["photo_url"])
    assert stored.size == (200, 400)
    assert stored.getpixel((100, 20))[0] > 200  # red on top: upright, as the phone showed it
    assert stored.getpixel((100, 380))[2] > 200
    assert dict(stored.getexif()) == {}
    assert b"Exif" not in raw and b"secret note" not in raw


def test_image_with_html_appended_is_accepted_but_the_html_is_not_stored(alice_client):
    data = image_bytes() + b"<html><script>alert('xss')</script></html>"

    response = upload(alice_client, data)

    assert response.status_code == 201
    _, raw = stored_image(response.json()["photo_url"])
    assert b"<script>" not in raw


def test_transparent_png_gets_a_white_background(alice_client):
    data = image_bytes("PNG", (600, 600), mode="RGBA", color=(0, 0, 0, 0))

    response = upload(alice_client, data, "cutout.png", "image/png")

    assert response.status_code == 201
    stored, _ = stored_image(response.json()["photo_url"])
    assert min(stored.getpixel((300, 300))) > 250


def test_cmyk_jpeg_and_a_broken_colour_profile_are_still_accepted(alice_client):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = image_bytes(mode="CMYK", color=(0, 0, 0, 0))
    broken_icc = image_bytes(icc_profile=b"not a real icc profile")
    with_srgb = image_bytes(icc_profile=srgb)

    for data in (cmyk, broken_icc, with_srgb):
        assert upload(alice_client, data).status_code == 201
    assert Photo.objects.count() == 3


def test_multi_picture_jpeg_from_a_phone_keeps_its_main_picture(alice_client):
    buf = io.BytesIO()
    Image.new("RGB", (600, 600), "red").save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (100, 100), "blue")]
    )

    response = upload(alice_client, buf.getvalue())

    assert response.status_code == 201
    assert response.json()["resolution"] == "600x600"


# --- refused, and nothing stored ------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (image_bytes("GIF"), "anim.gif", "image/gif"),
        (image_bytes("GIF"), "renamed.jpg", "image/jpeg"),
        (image_bytes("BMP"), "photo.bmp", "image/bmp"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", "doc.pdf", "application/pdf"),
        (b"just some text, not a picture", "notes.jpg", "image/jpeg"),
        (b"<html><script>alert(1)</script></html>" + image_bytes(), "x.jpg", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>", "x.png", "image/png"),
    ],
    ids=["gif", "gif-renamed", "bmp", "pdf", "text", "html-then-jpeg", "png-magic-then-html"],
)
def test_non_jpg_png_webp_content_is_415(alice_client, nothing_stored, data, name, content_type):
    response = upload(alice_client, data, name, content_type)

    assert response.status_code == 415
    assert response.json() == {"detail": UNSUPPORTED}


def test_file_over_10_mb_is_413(alice_client, nothing_stored):
    data = image_bytes() + b"\x00" * (11 * 1024 * 1024)

    response = upload(alice_client, data)

    assert response.status_code == 413
    assert "10MB" in response.json()["detail"]


def test_empty_file_is_refused(alice_client, nothing_stored):
    response = upload(alice_client, b"")

    assert response.status_code == 400
    assert response.json() == {"detail": "빈 파일입니다. 사진 파일을 다시 선택해주세요."}


def test_missing_photo_is_422(alice_client, nothing_stored):
    response = alice_client.post(URL, {"consent": "true"})

    assert response.status_code == 422
    assert response.json() == {"detail": "사진 파일을 선택해주세요."}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_400(alice_client, nothing_stored, fmt):
    noisy = Image.effect_noise((1024, 1024), 64).convert("RGB")
    buf = io.BytesIO()
    noisy.save(buf, fmt)
    data = buf.getvalue()

    response = upload(alice_client, data[: len(data) // 2])

    assert response.status_code == 400
    assert "손상" in response.json()["detail"]


def test_large_mostly_empty_png_over_the_pixel_cap_is_refused(alice_client, nothing_stored):
    data = image_bytes("PNG", (9000, 9000), mode="1", color=0)  # 81 MP in ~10 KB
    assert len(data) < 100_000

    response = upload(alice_client, data, "bomb.png", "image/png")

    assert response.status_code == 422
    assert "해상도가 너무 큽니다" in response.json()["detail"]


@pytest.mark.parametrize("size", [(20_000, 20_000), (12_000, 12_000), (70_000, 10)])
def test_decompression_bomb_header_is_refused_without_decoding(alice_client, nothing_stored, size):
    response = upload(alice_client, png_header_only(*size), "bomb.png", "image/png")

    assert response.status_code == 422
    assert "해상도가 너무 큽니다" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_image_is_refused(alice_client, nothing_stored, fmt):
    frames = [Image.new("RGB", (600, 600), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)

    response = upload(alice_client, buf.getvalue(), f"anim.{fmt.lower()}", f"image/{fmt.lower()}")

    assert response.status_code == 422
    assert "움직이는 이미지" in response.json()["detail"]


@pytest.mark.parametrize("consent", [None, "false", ""])
def test_upload_without_consent_is_422(alice_client, nothing_stored, consent):
    response = upload(alice_client, image_bytes(), consent=consent)

    assert response.status_code == 422
    assert response.json() == {"detail": NO_CONSENT}


def test_anonymous_upload_is_401(client, nothing_stored):
    response = upload(client, image_bytes())

    assert response.status_code == 401
    assert response.json() == {"detail": "로그인이 필요합니다."}


def test_storage_file_is_removed_when_the_row_cannot_be_saved(user, monkeypatch):
    before = media_files()

    def broken_create(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Photo.objects, "create", broken_create)
    with pytest.raises(RuntimeError):
        photos.upload_photo(
            owner=user, upload=SimpleUploadedFile("a.jpg", image_bytes()), consent=True
        )
    assert media_files() == before


# --- who can see it -------------------------------------------------------------------------
def test_other_user_cannot_fetch_the_photo(alice_client, other_user):
    url = upload(alice_client, image_bytes()).json()["photo_url"]
    bob = Client()
    bob.force_login(other_user)

    assert bob.get(url).status_code == 404
    assert Client().get(url).status_code == 404


# --- the page -------------------------------------------------------------------------------
def test_upload_page_shows_the_korean_form(alice_client):
    response = alice_client.get("/characters/new/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file"' in html and 'accept=".jpg,.jpeg,.png,.webp"' in html
    assert "이 사진을 사용할 권리가 있습니다" in html
    assert 'enctype="multipart/form-data"' in html
    assert "최대 10MB" in html


def test_page_upload_goes_on_to_the_style_step(alice_client):
    data = (TESTDATA / "astronaut.png").read_bytes()

    response = alice_client.post(
        "/characters/new/",
        {"photo": SimpleUploadedFile("me.png", data, "image/png"), "consent": "on"},
    )

    photo = Photo.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/characters/new/{photo.public_id}/style/"
    page = alice_client.get(response["Location"]).content.decode()
    assert "512x512" in page
    assert f"/media/{photo.image.name}" in page
    assert "얼굴을 찾았습니다" in page


def test_page_shows_warnings_on_the_style_step(alice_client):
    response = alice_client.post(
        "/characters/new/",
        {"photo": SimpleUploadedFile("s.jpg", image_bytes(size=(300, 300))), "consent": "on"},
        follow=True,
    )

    html = response.content.decode()
    assert "300x300" in html
    assert LOW_RES in html and NO_FACE in html


def test_page_shows_the_korean_error_for_a_gif(alice_client, nothing_stored):
    response = alice_client.post(
        "/characters/new/",
        {"photo": SimpleUploadedFile("a.gif", image_bytes("GIF"), "image/gif"), "consent": "on"},
    )

    assert response.status_code == 200
    assert UNSUPPORTED in response.content.decode()


def test_page_requires_consent(alice_client, nothing_stored):
    response = alice_client.post(
        "/characters/new/", {"photo": SimpleUploadedFile("a.jpg", image_bytes())}
    )

    assert response.status_code == 200
    assert NO_CONSENT in response.content.decode()


def test_page_upload_needs_login(client, nothing_stored):
    response = client.post(
        "/characters/new/", {"photo": SimpleUploadedFile("a.jpg", image_bytes()), "consent": "on"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL))


def test_style_step_of_another_users_photo_is_404(alice_client, other_user):
    upload(alice_client, image_bytes())
    photo = Photo.objects.get()
    bob = Client()
    bob.force_login(other_user)

    assert bob.get(f"/characters/new/{photo.public_id}/style/").status_code == 404
    assert alice_client.get(f"/characters/new/{photo.public_id}/style/").status_code == 200
