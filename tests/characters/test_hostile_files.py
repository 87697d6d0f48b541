"""A corpus of hostile files, run through the photo upload and the backup restore.

Every file is generated here (no binary fixtures). Each refused file must get its status
(the API: JSON {"detail": <Korean message>}; the page: the message in the form) and leave
NOTHING behind: no new row in any model, no new file in the media storage, the local backup
folder, the offline backend's folder or the temp folder, and no call to fal.

Policy, taken from characters/photos.py and characters/restore.py:
- Upload: judged by content, never by name or Content-Type. JPEG, PNG and WEBP only (415
  otherwise); over MAX_UPLOAD_BYTES 413; empty 400; undecodable/truncated 400; over 50 MP,
  a side over 16,384 px or a decompression bomb's header 422; animated 422 (a phone's MPO
  keeps its first picture). An image that decodes is accepted even if it carries junk
  (comments, metadata, bytes after the end, a ZIP behind it): it is decoded in full and
  re-encoded, so the stored JPEG holds none of the junk.
- Restore: every refusal is 422 (size included), before anything is stored.
"""

from __future__ import annotations

import html
import io
import json
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from characters.models import Character, Photo, Sample
from tests.characters.test_backup import (
    entries,
    lora_bytes,
    make_zip,
    metadata,
    safetensors_with,
    set_central_flag,
)
from tests.characters.test_upload import png_header_only
from tests.episodes.helpers import episode as make_episode

pytestmark = pytest.mark.django_db

UPLOAD = "/api/character/upload-photo"
RESTORE = "/api/character/restore-from-backup"
PAYLOAD = b"<script>alert('pwned')</script><?php system($_GET['c']); ?>"
UNSUPPORTED = "JPG, PNG, WEBP만 지원합니다"
TOO_BIG_PICTURE = "해상도가 너무 큽니다"
BROKEN = "손상"
ANIMATED = "움직이는 이미지"


# --- isolation: this test's own folders ----------------------------------------------------------
@pytest.fixture(autouse=True)
def private_dirs(settings, tmp_path, monkeypatch):
    """Media, offline backend, local backups and temp files in this test's own folder, so
    "nothing was written" is exact."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    settings.WEBTOON_OFFLINE_DIR = tmp_path / "offline"
    settings.LOCAL_BACKUP_PATH = tmp_path / "backups"
    settings.AUTO_BACKUP_ENABLED = True
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return tmp_path


def files_under(root: Path) -> set[str]:
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def row_counts() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.label not in ("sessions.Session",)
    }


@dataclass
class Snapshot:
    rows: dict[str, int]
    files: dict[str, set[str]]
    fal_calls: int


def snapshot(tmp: Path, fal) -> Snapshot:
    roots = ("media", "offline", "backups", "tmp")
    return Snapshot(row_counts(), {r: files_under(tmp / r) for r in roots}, len(fal.calls))


def assert_nothing_written(before: Snapshot, tmp: Path, fal) -> None:
    after = snapshot(tmp, fal)
    changed = {k: (v, after.rows[k]) for k, v in before.rows.items() if after.rows[k] != v}
    assert changed == {}, f"rows created or removed: {changed}"
    assert after.files == before.files, "files written"
    assert after.fal_calls == before.fal_calls, "fal was called"


@pytest.fixture
def clean(alice_client, fal, private_dirs):
    """Snapshot after login; `clean.check()` asserts nothing was written since."""

    class Clean:
        def __init__(self):
            self.before = snapshot(private_dirs, fal)

        def check(self):
            assert_nothing_written(self.before, private_dirs, fal)

    return Clean()


# --- building files ------------------------------------------------------------------------------
def image(fmt="JPEG", size=(600, 600), mode="RGB", color=(200, 150, 100), **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt, **save)
    return buf.getvalue()


def noisy(fmt="JPEG", size=(512, 512)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buf, fmt)
    return buf.getvalue()


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (400, 400), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_with_text(payload: bytes) -> bytes:
    data = image("PNG")
    at = data.index(b"IDAT") - 4
    return data[:at] + png_chunk(b"tEXt", b"Comment\x00" + payload) + data[at:]


def png_bad_idat(*, crc_only: bool) -> bytes:
    """A PNG whose first IDAT chunk has a wrong CRC, or garbage in the middle of its data."""
    data = bytearray(noisy("PNG", (256, 256)))
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at : at + 4])[0]
    if crc_only:
        data[at + 8 + length : at + 12 + length] = b"\x00\x00\x00\x00"
    else:
        middle = at + 8 + length // 2
        data[middle : middle + 64] = b"\xff" * 64
    return bytes(data)


def png_16_bit(color_type: int) -> bytes:
    """A 48-bit RGB (color type 2) or 64-bit RGBA (6) PNG, written by hand (Pillow cannot)."""
    channels = {2: 3, 6: 4}[color_type]
    width, height = 200, 100
    row = b"\x00" + bytes(range(256)) * (width * channels * 2 // 256) + b"\x00" * (
        width * channels * 2 % 256
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    idat = zlib.compress(row * height)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(image("JPEG", (64, 64)))
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def apng() -> bytes:
    return animated("PNG")


def pe_exe() -> bytes:
    stub = b"This program cannot be run in DOS mode.\r\n"
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + stub


def with_exif_payload() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = PAYLOAD.decode()  # ImageDescription
    return image("JPEG", exif=exif)


def u16_png() -> bytes:
    im = Image.new("I;16", (300, 200))
    im.putdata([(x * 200) % 65536 for x in range(300 * 200)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def palette_png_with_transparency() -> bytes:
    im = Image.new("P", (300, 300), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0)
    return buf.getvalue()


# --- upload corpus -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    build: Callable[[], bytes]  # built when the test runs, not when it is collected
    status: int
    detail: str  # a piece of the Korean message the user gets
    name: str = "photo.jpg"
    content_type: str = "image/jpeg"


REFUSED_UPLOADS = {
    # type spoofing: judged by content, whatever the name and Content-Type say
    "php_as_jpg": Hostile(lambda: b"<?php system($_GET['c']); ?>", 415, UNSUPPORTED, "shell.jpg"),
    "html_as_jpg": Hostile(lambda: b"<!DOCTYPE html><html><script>alert(1)</script></html>", 415,
                           UNSUPPORTED),
    "svg_as_jpg": Hostile(lambda:
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
        b'<rect width="600" height="600"/></svg>', 415, UNSUPPORTED),
    "svg_as_svg": Hostile(lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                          b"</svg>", 415, UNSUPPORTED, "a.svg", "image/svg+xml"),
    "pdf_as_jpg": Hostile(lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog /OpenAction << "
                          b"/S /JavaScript "
                          b"/JS (app.alert(1)) >> >> endobj\n%%EOF", 415, UNSUPPORTED),
    "exe_as_jpg": Hostile(lambda: pe_exe(), 415, UNSUPPORTED, "setup.jpg"),
    "elf_as_jpg": Hostile(lambda: b"\x7fELF\x02\x01\x01" + b"\x00" * 57, 415, UNSUPPORTED),
    "zip_as_jpg": Hostile(lambda: zip_of({"a.txt": b"hello"}), 415, UNSUPPORTED),
    "gif_as_jpg": Hostile(lambda: image("GIF"), 415, UNSUPPORTED),
    "bmp_as_jpg": Hostile(lambda: image("BMP"), 415, UNSUPPORTED),
    "tiff_as_jpg": Hostile(lambda: image("TIFF"), 415, UNSUPPORTED),
    "ico_as_png": Hostile(lambda: image("ICO", (64, 64)), 415, UNSUPPORTED, "a.png", "image/png"),
    "jpeg_magic_then_html": Hostile(lambda: b"\xff\xd8\xff\xe0" + PAYLOAD, 415, UNSUPPORTED),
    "png_magic_then_php": Hostile(lambda: b"\x89PNG\r\n\x1a\n" + PAYLOAD, 415, UNSUPPORTED, "a.png",
                                  "image/png"),
    "riff_webp_magic_only": Hostile(lambda: b"RIFF\x10\x00\x00\x00WEBPVP8 " + PAYLOAD, 415,
                                    UNSUPPORTED, "a.webp", "image/webp"),
    # decompression bombs and giant dimensions (the header alone is refused: nothing decoded)
    "png_header_30000x30000": Hostile(lambda: png_header_only(30_000, 30_000), 422, TOO_BIG_PICTURE,
                                      "bomb.png", "image/png"),
    "png_header_100000x1": Hostile(lambda: png_header_only(100_000, 1), 422, TOO_BIG_PICTURE,
                                   "bomb.png", "image/png"),
    "png_header_1x100000": Hostile(lambda: png_header_only(1, 100_000), 422, TOO_BIG_PICTURE,
                                   "bomb.png", "image/png"),
    "png_real_bomb_81mp_in_10kb": Hostile(lambda: image("PNG", (9000, 9000), "1", 0), 422,
                                          TOO_BIG_PICTURE, "bomb.png", "image/png"),
    "png_just_over_50mp": Hostile(lambda: image("PNG", (7072, 7072), "1", 0), 422, TOO_BIG_PICTURE,
                                  "big.png", "image/png"),
    "png_side_over_16384": Hostile(lambda: image("PNG", (16_385, 2), "1", 0), 422, TOO_BIG_PICTURE,
                                   "wide.png", "image/png"),
    "jpeg_header_65500x65500": Hostile(lambda: jpeg_with_size(65_500, 65_500), 422,
                                       TOO_BIG_PICTURE),
    "jpeg_header_zero_width": Hostile(lambda: jpeg_with_size(0, 64), 415, UNSUPPORTED),
    # truncated and broken
    "truncated_jpeg": Hostile(lambda: noisy("JPEG")[:20_000], 400, BROKEN),
    "truncated_png": Hostile(lambda: noisy("PNG")[:30_000], 400, BROKEN, "a.png", "image/png"),
    # libwebp needs the whole file to open it: a cut WEBP is not recognised at all
    "truncated_webp": Hostile(lambda: noisy("WEBP")[:5_000], 415, UNSUPPORTED, "a.webp",
                              "image/webp"),
    "png_corrupt_idat_data": Hostile(lambda: png_bad_idat(crc_only=False), 400, BROKEN, "a.png",
                                     "image/png"),
    "jpeg_soi_only": Hostile(lambda: b"\xff\xd8", 415, UNSUPPORTED),
    "png_signature_only": Hostile(lambda: b"\x89PNG\r\n\x1a\n", 415, UNSUPPORTED, "a.png",
                                  "image/png"),
    "one_byte": Hostile(lambda: b"\xff", 415, UNSUPPORTED),
    "zero_bytes": Hostile(lambda: b"", 400, "빈 파일"),
    # animated (no single photo); GIF is not accepted at all
    "animated_gif": Hostile(lambda: animated("GIF"), 415, UNSUPPORTED, "a.gif", "image/gif"),
    "animated_webp": Hostile(lambda: animated("WEBP"), 422, ANIMATED, "a.webp", "image/webp"),
    "apng": Hostile(lambda: apng(), 422, ANIMATED, "a.png", "image/png"),
    # size
    "over_max_upload_bytes": Hostile(lambda: oversized(), 413, "파일이 너무 큽니다"),
}


def oversized() -> bytes:
    """A valid JPEG padded to one byte over the limit (bytes after the image are legal)."""
    data = image("JPEG")
    return data + b"\x00" * (django_settings.MAX_UPLOAD_BYTES + 1 - len(data))


def post_photo(client, data: bytes, name="photo.jpg", content_type="image/jpeg"):
    return client.post(
        UPLOAD,
        {"photo": SimpleUploadedFile(name, data, content_type=content_type), "consent": "true"},
    )


@pytest.mark.parametrize("case", list(REFUSED_UPLOADS), ids=list(REFUSED_UPLOADS))
def test_hostile_upload_is_refused_and_nothing_is_written(alice_client, clean, case):
    hostile = REFUSED_UPLOADS[case]

    response = post_photo(alice_client, hostile.build(), hostile.name, hostile.content_type)

    assert response.status_code == hostile.status, response.content
    body = response.json()
    assert set(body) == {"detail"} and hostile.detail in body["detail"]
    assert re.search(r"[가-힣]", body["detail"])  # a readable Korean message
    clean.check()


PAGE_SAMPLES = ["php_as_jpg", "svg_as_jpg", "png_header_30000x30000", "truncated_jpeg",
                "animated_webp", "over_max_upload_bytes", "jpeg_magic_then_html"]


@pytest.mark.parametrize("case", PAGE_SAMPLES)
def test_hostile_upload_through_the_page_shows_the_message_and_writes_nothing(
    alice_client, clean, case
):
    hostile = REFUSED_UPLOADS[case]
    photo = SimpleUploadedFile(hostile.name, hostile.build(), hostile.content_type)

    response = alice_client.post("/characters/new/", {"photo": photo, "consent": "on"})

    assert response.status_code == 200
    assert hostile.detail in html.unescape(response.content.decode())
    clean.check()


@pytest.mark.parametrize("case", ["php_as_jpg", "png_header_30000x30000", "truncated_png",
                                  "apng", "over_max_upload_bytes"])
def test_hostile_panel_upload_is_refused_too(alice_client, user, fal, private_dirs, case):
    """The episode editor's picture upload goes through the same checks."""
    hostile = REFUSED_UPLOADS[case]
    ep = make_episode(user)
    before = snapshot(private_dirs, fal)

    response = alice_client.post(
        f"/api/episode/{ep.public_id}/panels/upload",
        {"image": SimpleUploadedFile(hostile.name, hostile.build(), hostile.content_type)},
    )

    assert response.status_code == hostile.status
    assert hostile.detail in response.json()["detail"]
    assert_nothing_written(before, private_dirs, fal)


# --- accepted, but only after re-encoding: the junk never reaches storage ------------------------
def gifar() -> bytes:
    return image("JPEG") + zip_of({"evil/Exploit.class": PAYLOAD, "index.html": PAYLOAD})


def jpeg_with_comment() -> bytes:
    return image("JPEG", comment=PAYLOAD)


ACCEPTED_WITH_JUNK = {
    "gifar_jpeg_plus_zip": (gifar, "image/jpeg"),
    "jpeg_with_html_comment": (jpeg_with_comment, "image/jpeg"),
    "jpeg_with_exif_payload": (with_exif_payload, "image/jpeg"),
    "jpeg_with_icc_payload": (lambda: image("JPEG", icc_profile=PAYLOAD), "image/jpeg"),
    "jpeg_then_php": (lambda: image("JPEG") + PAYLOAD, "image/jpeg"),
    "png_with_text_chunk_payload": (lambda: png_with_text(PAYLOAD), "image/png"),
    "png_then_php_after_iend": (lambda: image("PNG") + PAYLOAD, "image/png"),
    # Unparsable EXIF is junk like the rest: ignored, not a reason to refuse the pixels.
    "webp_with_exif_payload": (lambda: image("WEBP", exif=b"Exif\x00\x00" + PAYLOAD),
                               "image/webp"),
    "png_with_exif_payload": (lambda: image("PNG", exif=PAYLOAD), "image/png"),
    # Pillow does not check an IDAT chunk's CRC; the data inflates to the right pixels.
    "png_with_a_wrong_idat_crc": (lambda: png_bad_idat(crc_only=True), "image/png"),
    "mpo_keeps_its_first_picture": (lambda: mpo(), "image/jpeg"),
}


def mpo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (600, 600), "red").save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (100, 100), "blue")]
    )
    return buf.getvalue()


def assert_clean_jpeg(name: str, user) -> bytes:
    assert re.fullmatch(rf"u/{user.pk}/photos/[0-9a-f]{{32}}\.jpg", name), name
    with default_storage.open(name, "rb") as fh:
        stored = fh.read()
    for junk in (PAYLOAD, b"<script", b"<?php", b"PK\x03\x04", b"Exploit"):
        assert junk not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert "comment" not in im.info and "icc_profile" not in im.info
        assert not im.getexif()
    return stored


@pytest.mark.parametrize("case", list(ACCEPTED_WITH_JUNK), ids=list(ACCEPTED_WITH_JUNK))
def test_valid_image_with_junk_is_accepted_and_only_clean_pixels_are_stored(
    alice_client, user, fal, private_dirs, case
):
    build, content_type = ACCEPTED_WITH_JUNK[case]
    data = build()
    before = snapshot(private_dirs, fal)

    response = post_photo(alice_client, data, "photo.jpg", content_type)

    assert response.status_code == 201, response.content
    photo = Photo.objects.get()
    stored = assert_clean_jpeg(photo.image.name, user)
    assert stored != data
    assert not [p for p in private_dirs.rglob("*") if p.is_file() and PAYLOAD in p.read_bytes()]
    after = snapshot(private_dirs, fal)
    assert after.files["media"] - before.files["media"] == {photo.image.name}
    assert after.files["tmp"] == set()
    assert after.fal_calls == before.fal_calls


ODD_BUT_VALID = {
    "cmyk_jpeg": (lambda: image("JPEG", mode="CMYK", color=(0, 0, 0, 0)), "image/jpeg"),
    "grayscale_jpeg": (lambda: image("JPEG", mode="L", color=128), "image/jpeg"),
    "png_16_bit_grayscale": (lambda: u16_png(), "image/png"),
    "png_48_bit_rgb": (lambda: png_16_bit(2), "image/png"),
    "png_64_bit_rgba": (lambda: png_16_bit(6), "image/png"),
    "png_palette_with_transparency": (lambda: palette_png_with_transparency(), "image/png"),
    "png_grayscale_alpha": (lambda: image("PNG", mode="LA", color=(100, 0)), "image/png"),
    "png_1_bit": (lambda: image("PNG", mode="1", color=1), "image/png"),
    "png_rgba": (lambda: image("PNG", mode="RGBA", color=(0, 0, 0, 0)), "image/png"),
    "webp_lossless_alpha": (lambda: image("WEBP", mode="RGBA", color=(9, 9, 9, 9), lossless=True),
                            "image/webp"),
    "progressive_jpeg": (lambda: image("JPEG", progressive=True), "image/jpeg"),
    "tiny_1x1_png": (lambda: image("PNG", (1, 1)), "image/png"),
}


@pytest.mark.parametrize("case", list(ODD_BUT_VALID), ids=list(ODD_BUT_VALID))
def test_odd_colour_modes_are_accepted_as_plain_rgb_jpeg(alice_client, user, case):
    build, content_type = ODD_BUT_VALID[case]

    response = post_photo(alice_client, build(), "photo.png", content_type)

    assert response.status_code == 201, response.content
    assert_clean_jpeg(Photo.objects.get().image.name, user)


FILE_NAMES = {
    "path_traversal": "../../../../etc/passwd.jpg",
    "windows_traversal": "..\\..\\windows\\system32\\a.jpg",
    "absolute": "/etc/cron.d/evil.jpg",
    "nul_byte": "photo.php\x00.jpg",
    "three_hundred_chars": "가" * 296 + ".jpg",
    "php_extension": "shell.php",
    "no_extension": "photo",
    "rtl_override": "gpj.\u202eexe.jpg",
    "html_name": "<img src=x onerror=alert(1)>.jpg",
}


def post_raw_file_name(client, file_name: str, data: bytes):
    """multipart/form-data written by hand: Django's test client would strip the path from
    the name before sending it, a hostile client does not."""
    boundary = "hostileBoundary7MA4YWxk"
    disposition = f'form-data; name="photo"; filename="{file_name}"'.encode()
    body = b"".join([
        f"--{boundary}\r\n".encode(), b"Content-Disposition: " + disposition + b"\r\n",
        b"Content-Type: image/jpeg\r\n\r\n", data, b"\r\n",
        f"--{boundary}\r\n".encode(), b'Content-Disposition: form-data; name="consent"\r\n\r\n',
        b"true\r\n", f"--{boundary}--\r\n".encode(),
    ])
    content_type = f"multipart/form-data; boundary={boundary}"
    return client.generic("POST", UPLOAD, body, content_type=content_type)


@pytest.mark.parametrize("case", list(FILE_NAMES), ids=list(FILE_NAMES))
def test_the_clients_file_name_is_never_used_for_storage(alice_client, user, private_dirs, case):
    response = post_raw_file_name(alice_client, FILE_NAMES[case], image("JPEG"))

    assert response.status_code == 201, response.content
    name = Photo.objects.get().image.name
    assert_clean_jpeg(name, user)
    assert files_under(private_dirs / "media") == {name}
    assert not files_under(private_dirs / "tmp")
    assert not [p for p in private_dirs.rglob("*") if p.is_file() and "passwd" in p.name]


# --- restore corpus ------------------------------------------------------------------------------
F32_8 = {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}


def with_entry(name: str, data: bytes) -> bytes:
    return make_zip([*entries().items(), (name, data)])


def meta(**changes) -> bytes:
    return make_zip(entries({"metadata.json": json.dumps(metadata(**changes)).encode()}))


def meta_raw(raw: bytes) -> bytes:
    return make_zip(entries({"metadata.json": raw}))


def lora(data: bytes) -> bytes:
    return make_zip(entries({"lora_weights.safetensors": data}))


def tensors(header, data: bytes = bytes(32)) -> bytes:
    return lora(safetensors_with(header, data))


def raw_header(raw: bytes, data: bytes = bytes(32)) -> bytes:
    return lora(struct.pack("<Q", len(raw)) + raw + data)


def symlink(name: str, target: bytes) -> bytes:
    link = zipfile.ZipInfo(name)
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    files = [(k, v) for k, v in entries().items() if k != name]
    return make_zip([*files, (link, target)])


def lying_uncompressed_size() -> bytes:
    """The LoRA entry's central record says 40 bytes; the data is longer (the CRC then fails)."""
    data = bytearray(make_zip(entries(), zipfile.ZIP_DEFLATED))
    name = b"lora_weights.safetensors"
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == name:
            struct.pack_into("<I", data, at + 24, 40)
            break
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def local_name_differs() -> bytes:
    """The local header names another file than the central directory does."""
    data = bytearray(make_zip(entries()))
    at = data.index(b"PK\x03\x04")
    while data[at + 30 : at + 30 + 13] != b"metadata.json":
        at = data.index(b"PK\x03\x04", at + 4)
    data[at + 30 : at + 30 + 13] = b"../../etc/cro"
    return bytes(data)


def stored_size_mismatch() -> bytes:
    """A stored (uncompressed) entry whose compressed and real sizes disagree."""
    data = bytearray(make_zip(entries()))
    at = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, at + 20, struct.unpack_from("<I", data, at + 20)[0] + 1)
    return bytes(data)


def bad_crc() -> bytes:
    data = bytearray(make_zip(entries()))
    at = data.index(lora_bytes()) + 20  # a byte inside the stored LoRA
    data[at] ^= 0xFF
    return bytes(data)


def lying_entry_count() -> bytes:
    data = bytearray(make_zip(entries()))
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 65_535, 65_535)
    return bytes(data)


def nested_zip_as_image() -> bytes:
    return make_zip(entries({"reference_sheet/01.jpg": make_zip(entries())}))


def many_small_bombs() -> bytes:
    """150 entries of 1 MiB of zeros: each under the ratio check's floor, 150 MiB in all."""
    zeros = bytes(2**20)
    files = {k: v for k, v in entries().items() if not k.startswith("reference_sheet/")}
    files.update({f"reference_sheet/{i:02d}.png": zeros for i in range(1, 151)})
    return make_zip(files, zipfile.ZIP_DEFLATED)


def zip_with(compression: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries().items():
            zf.writestr(name, data, compress_type=compression)
    return buf.getvalue()


def nul_in_name() -> bytes:
    """zipfile cuts a name at NUL when writing, so the NUL is put in by hand."""
    data = with_entry("samples/test_02.jpgQ.exe", image("JPEG"))
    return data.replace(b"test_02.jpgQ.exe", b"test_02.jpg\x00.exe")


def truncated_zip() -> bytes:
    data = make_zip(entries())
    return data[: len(data) // 2]


@dataclass(frozen=True)
class BadBackup:
    build: object  # () -> bytes
    detail: str


def _bad(build, detail: str) -> BadBackup:
    return BadBackup(build, detail)


HOSTILE_BACKUPS = {
    # paths out of the folder
    "zip_slip_dotdot": _bad(lambda: with_entry("../../evil.sh", b"x"), "허용되지 않는 경로"),
    "zip_slip_inside_a_folder": _bad(
        lambda: with_entry("reference_sheet/../../../etc/cron.d/x", b"x"), "허용되지 않는 경로"),
    "zip_slip_in_macos_junk": _bad(lambda: with_entry("__MACOSX/../../x", b"x"),
                                   "허용되지 않는 경로"),
    "dot_segment": _bad(lambda: with_entry("./metadata.json", b"{}"), "허용되지 않는 경로"),
    "absolute_path": _bad(lambda: with_entry("/etc/passwd", b"x"), "허용되지 않는 경로"),
    "unc_path": _bad(lambda: with_entry("//server/share/x", b"x"), "허용되지 않는 경로"),
    "windows_drive": _bad(lambda: with_entry("C:/Windows/x.dll", b"x"), "허용되지 않는 경로"),
    "windows_backslash": _bad(lambda: with_entry("..\\..\\x", b"x"), "역슬래시"),
    "nul_in_name": _bad(nul_in_name, "허용되지 않는 경로"),
    "control_char_in_name": _bad(lambda: with_entry("samples/\nx.jpg", b"x"),
                                 "허용되지 않는 경로"),
    "name_300_chars": _bad(lambda: with_entry("a" * 300, b"x"), "백업 형식에 없는 파일"),
    # links
    "symlink_image": _bad(lambda: symlink("reference_sheet/03.jpg", b"/etc/passwd"),
                          "심볼릭 링크"),
    "symlink_as_metadata": _bad(lambda: symlink("metadata.json", b"../../../etc/passwd"),
                                "심볼릭 링크"),
    "symlink_as_lora": _bad(lambda: symlink("lora_weights.safetensors", b"/dev/zero"),
                            "심볼릭 링크"),
    # bombs
    "zip_bomb_high_ratio": _bad(
        lambda: make_zip(entries({"lora_weights.safetensors": bytes(8 * 2**20)}),
                         zipfile.ZIP_DEFLATED), "압축 폭탄"),
    "zip_bomb_many_entries": _bad(
        lambda: make_zip([*entries().items(), *((f"samples/x{i}", b"") for i in range(5000))]),
        "너무 많습니다"),
    "entry_count_lie_in_end_record": _bad(lying_entry_count, "너무 많습니다"),
    "many_small_bombs_under_the_ratio_floor": _bad(many_small_bombs, "reference_sheet/01.png"),
    "uncompressed_size_lie": _bad(lying_uncompressed_size, "손상"),
    "bad_crc": _bad(bad_crc, "손상"),
    "local_header_name_differs": _bad(local_name_differs, "metadata.json 파일이 손상"),
    "stored_size_mismatch": _bad(stored_size_mismatch, "손상"),
    # containers and encryption
    "nested_zip_as_image": _bad(nested_zip_as_image, "reference_sheet/01.jpg"),
    "nested_zip_entry": _bad(lambda: with_entry("backup.zip", make_zip(entries())),
                             "백업 형식에 없는 파일"),
    "encrypted_lora": _bad(
        lambda: set_central_flag(make_zip(entries()), "lora_weights.safetensors", 0x1), "암호"),
    "encrypted_metadata": _bad(
        lambda: set_central_flag(make_zip(entries()), "metadata.json", 0x1), "암호"),
    "bzip2_entries": _bad(lambda: zip_with(zipfile.ZIP_BZIP2), "지원하지 않는 압축"),
    "lzma_entries": _bad(lambda: zip_with(zipfile.ZIP_LZMA), "지원하지 않는 압축"),
    "directory_with_data": _bad(lambda: with_entry("samples/", b"data"), "백업 형식에 없는 파일"),
    # duplicates
    "duplicate_metadata": _bad(lambda: with_entry("metadata.json", b"{}"), "두 번"),
    "duplicate_by_case": _bad(lambda: with_entry("Metadata.JSON", b"{}"), "두 번"),
    "duplicate_sample_by_case": _bad(lambda: with_entry("samples/TEST_01.JPG", b"x"), "두 번"),
    "duplicate_photo": _bad(lambda: with_entry("original_photo.png", b"x"), "두 번"),
    # not a ZIP
    "pdf": _bad(lambda: b"%PDF-1.7\n%%EOF", "ZIP 형식"),
    "jpeg": _bad(lambda: image("JPEG"), "ZIP 형식"),
    "truncated_zip": _bad(truncated_zip, "ZIP 형식"),
    "empty": _bad(lambda: b"", "빈 파일"),
    # metadata.json
    "meta_not_utf8": _bad(lambda: meta_raw('{"character_name": "박"}'.encode("cp949")),
                          "JSON 형식 오류"),
    "meta_deep_nesting": _bad(lambda: meta_raw(b"[" * 30_000 + b"]" * 30_000),
                              "JSON 형식 오류"),
    "meta_huge_integer": _bad(lambda: meta_raw(b'{"version": 1' + b"0" * 5000 + b"}"),
                              "JSON 형식 오류"),
    "meta_over_64kb": _bad(
        lambda: meta_raw(json.dumps({**metadata(), "pad": " " * 70_000}).encode()), "너무 큽니다"),
    "meta_a_string": _bad(lambda: meta_raw(b'"hello"'), "JSON 객체"),
    "meta_null": _bad(lambda: meta_raw(b"null"), "JSON 객체"),
    "name_a_list": _bad(lambda: meta(character_name=["박사장"]), "character_name"),
    "name_empty": _bad(lambda: meta(character_name="   "), "character_name"),
    "name_too_long": _bad(lambda: meta(character_name="가" * 61), "character_name"),
    "trigger_an_int": _bad(lambda: meta(trigger_word=7), "trigger_word"),
    "trigger_with_prompt_injection": _bad(
        lambda: meta(trigger_word="sks, nsfw, (masterpiece:2)"), "trigger_word"),
    "style_null": _bad(lambda: meta(style_id=None), "style_id"),
    "scale_nan": _bad(lambda: meta_raw(
        json.dumps(metadata()).replace('"lora_scale_default": 0.8', '"lora_scale_default": NaN')
        .encode()), "lora_scale_default"),
    "scale_infinity": _bad(lambda: meta_raw(
        json.dumps(metadata()).replace('"lora_scale_default": 0.8',
                                       '"lora_scale_default": Infinity').encode()),
        "lora_scale_default"),
    "learning_rate_too_big": _bad(lambda: meta(learning_rate=1.5), "learning_rate"),
    "steps_a_string": _bad(lambda: meta(training_steps="1500"), "training_steps"),
    "resolution_negative": _bad(lambda: meta(resolution=-1), "resolution"),
    "version_zero": _bad(lambda: meta(version=0), "version"),
    "version_over_smallint": _bad(lambda: meta(version=40_000), "version"),
    "created_at_not_a_date": _bad(lambda: meta(created_at="yesterday"), "created_at"),
    "created_at_a_number": _bad(lambda: meta(created_at=1_700_000_000), "created_at"),
    "custom_prompt_too_long": _bad(lambda: meta(custom_prompt="x" * 201), "custom_prompt"),
    "captions_not_a_list": _bad(lambda: meta(reference_captions="a"), "reference_captions"),
    "captions_of_ints": _bad(lambda: meta(reference_captions=[1, 2]), "reference_captions"),
    "captions_too_many": _bad(lambda: meta(reference_captions=["a"] * 201),
                              "reference_captions"),
    "sha256_not_hex": _bad(lambda: meta(lora_sha256="z" * 64), "lora_sha256"),
    # safetensors
    "st_header_length_beyond_file": _bad(
        lambda: lora(struct.pack("<Q", 5000) + lora_bytes()[8:]), "헤더 길이"),
    "st_header_length_all_ones": _bad(lambda: lora(b"\xff" * 8 + b"{}"), "헤더 길이"),
    "st_header_length_2_63": _bad(lambda: lora(struct.pack("<Q", 2**63) + b"{}"), "헤더 길이"),
    "st_header_length_zero": _bad(lambda: raw_header(b""), "JSON이 아닙니다"),
    "st_header_over_1mb": _bad(
        lambda: raw_header(b"{" + b" " * (2**20) + b"}"), "헤더 길이"),
    "st_header_not_json": _bad(lambda: raw_header(b"{{{{"), "JSON이 아닙니다"),
    "st_header_not_utf8": _bad(lambda: raw_header(b'{"\xff": 1}'), "JSON이 아닙니다"),
    "st_header_a_list": _bad(lambda: raw_header(b"[1, 2, 3]"), "JSON 객체가 아닙니다"),
    "st_header_null": _bad(lambda: raw_header(b"null"), "JSON 객체가 아닙니다"),
    "st_header_duplicate_keys": _bad(
        lambda: raw_header(b'{"w": ' + json.dumps(F32_8).encode() + b', "w": '
                           + json.dumps(F32_8).encode() + b"}"), "JSON이 아닙니다"),
    "st_header_deep_nesting": _bad(lambda: raw_header(b"[" * 100_000 + b"]" * 100_000),
                                   "JSON이 아닙니다"),
    "st_no_tensors": _bad(lambda: tensors({}, b""), "텐서가 하나도 없습니다"),
    "st_only_metadata": _bad(lambda: tensors({"__metadata__": {"a": "b"}}, b""),
                             "텐서가 하나도 없습니다"),
    "st_tensor_not_an_object": _bad(lambda: tensors({"w": [1, 2]}), "객체가 아닙니다"),
    "st_dtype_unknown": _bad(
        lambda: tensors({"w": {**F32_8, "dtype": "Q4_K"}}), "dtype Q4_K"),
    "st_dtype_missing": _bad(
        lambda: tensors({"w": {"shape": [8], "data_offsets": [0, 32]}}), "dtype"),
    "st_dtype_f64": _bad(
        lambda: tensors({"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}),
        "dtype F64"),
    "st_shape_negative": _bad(lambda: tensors({"w": {**F32_8, "shape": [-8]}}), "shape"),
    "st_shape_huge_product": _bad(
        lambda: tensors({"w": {**F32_8, "shape": [2**40, 2**40]}}), "shape"),
    "st_offsets_negative": _bad(
        lambda: tensors({"w": {**F32_8, "data_offsets": [-8, 24]}}), "data_offsets"),
    "st_offsets_reversed": _bad(
        lambda: tensors({"w": {**F32_8, "data_offsets": [32, 0]}}), "data_offsets"),
    "st_offsets_floats": _bad(
        lambda: tensors({"w": {**F32_8, "data_offsets": [0.0, 32.0]}}), "data_offsets"),
    "st_offsets_three": _bad(
        lambda: tensors({"w": {**F32_8, "data_offsets": [0, 16, 32]}}), "data_offsets"),
    "st_offsets_beyond_file": _bad(
        lambda: tensors({"w": {**F32_8, "shape": [2**20], "data_offsets": [0, 2**22]}}),
        "범위를 벗어납니다"),
    "st_offsets_overlapping": _bad(lambda: tensors({"a": F32_8, "b": F32_8}), "겹치는"),
    "st_hole_between_tensors": _bad(
        lambda: tensors({"a": {**F32_8, "shape": [4], "data_offsets": [0, 16]},
                         "b": {**F32_8, "shape": [2], "data_offsets": [24, 32]}}), "빈 곳"),
    "st_trailing_bytes": _bad(lambda: tensors({"w": F32_8}, bytes(64)), "뒤에 데이터"),
    "st_truncated": _bad(lambda: lora(lora_bytes()[:-5]), "잘렸거나"),
    "st_seven_bytes": _bad(lambda: lora(b"\x01" * 7), "잘린 파일"),
    "st_is_a_pickle": _bad(lambda: lora(b"\x80\x04\x95" + b"cos\nsystem\n(S'id'\ntR." * 2),
                           "헤더 길이"),
    # images inside the backup
    "sample_is_text": _bad(lambda: make_zip(entries({"samples/test_01.jpg": b"just text"})),
                           "samples/test_01.jpg"),
    "reference_is_svg": _bad(
        lambda: make_zip(entries({"reference_sheet/01.jpg": b'<svg xmlns="http://www.w3.org/'
                                  b'2000/svg" onload="alert(1)"/>'})), "reference_sheet/01.jpg"),
    "reference_is_pdf": _bad(
        lambda: make_zip(entries({"reference_sheet/02.jpg": b"%PDF-1.4\n%%EOF"})),
        "reference_sheet/02.jpg"),
    "reference_is_empty": _bad(lambda: make_zip(entries({"reference_sheet/01.jpg": b""})),
                               "reference_sheet/01.jpg"),
    "sample_is_gif": _bad(lambda: make_zip(entries({"samples/test_01.jpg": image("GIF")})),
                          "samples/test_01.jpg"),
    "photo_is_exe": _bad(lambda: make_zip(entries({"original_photo.jpg": pe_exe()})),
                         "original_photo.jpg"),
    "reference_bomb_header": _bad(
        lambda: make_zip(entries({"reference_sheet/01.jpg": png_header_only(30_000, 30_000)})),
        "reference_sheet/01.jpg"),
    "sample_animated_webp": _bad(
        lambda: make_zip(entries({"samples/test_01.jpg": animated("WEBP")})), ANIMATED),
    "reference_truncated": _bad(
        lambda: make_zip(entries({"reference_sheet/01.jpg": noisy("JPEG")[:9_000]})),
        "reference_sheet/01.jpg"),
    "image_with_unlisted_extension": _bad(lambda: with_entry("samples/test_02.gif", image("GIF")),
                                          "백업 형식에 없는 파일"),
}


def post_backup(client, data: bytes):
    return client.post(RESTORE, {"backup": SimpleUploadedFile("backup.zip", data,
                                                              "application/zip")})


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", list(HOSTILE_BACKUPS), ids=list(HOSTILE_BACKUPS))
def test_hostile_backup_is_422_and_nothing_is_written(alice_client, clean, case):
    bad = HOSTILE_BACKUPS[case]

    response = post_backup(alice_client, bad.build())

    assert response.status_code == 422, response.content
    body = response.json()
    assert set(body) == {"detail"} and bad.detail in body["detail"], body
    assert re.search(r"[가-힣]", body["detail"])
    clean.check()


@pytest.mark.parametrize("limit", ["MAX_LORA_BYTES", "image", "backup"])
def test_each_size_cap_of_the_restore_is_422_and_writes_nothing(
    alice_client, clean, settings, monkeypatch, limit
):
    if limit == "MAX_LORA_BYTES":
        settings.MAX_LORA_BYTES = 40
    elif limit == "image":
        monkeypatch.setattr("characters.restore.max_image_bytes", lambda: 500)
    else:
        monkeypatch.setattr("characters.restore.max_backup_bytes", lambda: 1000)

    response = post_backup(alice_client, make_zip(entries()))

    assert response.status_code == 422
    assert "너무 큽니다" in response.json()["detail"]
    clean.check()


RESTORE_PAGE_SAMPLES = ["zip_slip_dotdot", "symlink_image", "zip_bomb_high_ratio",
                        "encrypted_lora", "st_header_length_all_ones", "meta_a_string",
                        "sample_is_text", "empty"]


@pytest.mark.parametrize("case", RESTORE_PAGE_SAMPLES)
def test_hostile_backup_through_the_restore_page_shows_the_message(alice_client, clean, case):
    bad = HOSTILE_BACKUPS[case]
    upload = SimpleUploadedFile("backup.zip", bad.build(), "application/zip")

    response = alice_client.post("/characters/restore/", {"backup": upload})

    assert response.status_code == 200
    assert bad.detail in html.unescape(response.content.decode())
    clean.check()


def test_backup_with_polyglot_images_restores_with_clean_jpegs_only(
    alice_client, user, fal, private_dirs
):
    """Images that decode are accepted, but what is stored (media, the local backup folder,
    the training ZIP) is our own re-encoded JPEG: none of the junk."""
    junk = image("JPEG", comment=PAYLOAD) + zip_of({"index.html": PAYLOAD})
    data = make_zip(entries({"samples/test_01.jpg": junk, "original_photo.jpg": gifar(),
                             "reference_sheet/01.jpg": png_with_text(PAYLOAD)}))

    response = post_backup(alice_client, data)

    assert response.status_code == 201, response.content
    character = Character.objects.get()
    assert_clean_jpeg(character.photo.image.name, user)
    assert Sample.objects.filter(character=character).count() == 1
    stored = [p for p in private_dirs.rglob("*") if p.is_file()]
    assert stored and not [p for p in stored if PAYLOAD in p.read_bytes()]
    with default_storage.open(character.training_data.name, "rb") as fh:
        with zipfile.ZipFile(fh) as zf:
            assert not [n for n in zf.namelist() if PAYLOAD in zf.read(n)]
