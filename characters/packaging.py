"""SPEC Step 5: the training ZIP fal.ai fetches: `01.jpg` + `01.txt`, `02.jpg` + `02.txt`, …

Images are handled one at a time and written straight into the archive, so memory stays at
about one decoded image however many cuts are selected. Every image leaves as a 1024×1024
RGB JPEG; one that already is exactly that goes in byte for byte (a re-encode would only lose
quality).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from webtoon.exceptions import InvalidInput
from webtoon.imaging.pixels import to_srgb

logger = logging.getLogger(__name__)

SIZE = (1024, 1024)
JPEG_QUALITY = 95
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# Fixed entry timestamps: the same cuts and captions always give the same ZIP (and sha256).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16  # rw-r--r-- once unpacked, instead of zipfile's 0o600 or nothing
_READ_CHUNK = 1 << 20
_EXIF_ORIENTATION = 0x0112
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TrainingItem:
    open: Callable[[], BinaryIO]  # opens the stored cut image (Django File.open / storage.open)
    caption: str


@dataclass(frozen=True)
class PackageStats:
    image_count: int
    total_bytes: int  # size of the ZIP
    sha256: str


class UnreadableImage(InvalidInput):
    """Item `number` (1-based, as in its `NN.jpg` name) could not be opened or decoded."""

    def __init__(self, number: int) -> None:
        super().__init__(
            _("%(number)02d번 이미지를 읽을 수 없습니다. 이 컷을 빼거나 다시 생성해 주세요.")
            % {"number": number}
        )
        self.number = number


def caption_for(trigger_word: str, style_description: str, pose_description: str) -> str:
    """The caption `{trigger}, {style}, {pose}`; empty parts are left out (custom may be blank)."""
    # One line per caption: a pasted custom prompt may carry newlines or stray commas.
    parts = (
        _WHITESPACE.sub(" ", part).strip(" ,")
        for part in (trigger_word, style_description, pose_description)
    )
    return ", ".join(part for part in parts if part)


def write_training_zip(items: Sequence[TrainingItem], dest: BinaryIO) -> PackageStats:
    """Write the training ZIP for `items` (in order) to `dest`, from its current position.

    `dest` must be readable and seekable (e.g. a `tempfile.TemporaryFile()`): the sha256 is
    taken by reading the finished archive back. Hashing on the way out would need zipfile's
    streaming mode, whose data descriptors on stored entries some unzip tools refuse.
    Raises InvalidInput for no items and UnreadableImage for an image that will not decode.
    """
    if not items:
        raise InvalidInput(_("학습에 쓸 이미지가 없습니다. 컷을 한 장 이상 선택해 주세요."))
    start = dest.tell()
    with zipfile.ZipFile(dest, "w") as archive:
        for number, item in enumerate(items, start=1):
            stem = f"{number:02d}"
            _add_image(archive, f"{stem}.jpg", item, number)
            archive.writestr(
                _entry(f"{stem}.txt", zipfile.ZIP_DEFLATED), item.caption.encode("utf-8")
            )
    end = dest.tell()
    return PackageStats(
        image_count=len(items), total_bytes=end - start, sha256=_sha256(dest, start, end)
    )


def _add_image(archive: zipfile.ZipFile, name: str, item: TrainingItem, number: int) -> None:
    try:
        data = _training_jpeg(item)
    except Exception as exc:
        # Missing file, unknown format, truncated or corrupt data: Pillow and storages
        # report these through many exception types; to the user they are one problem.
        logger.info("training image %02d unreadable: %r", number, exc)
        raise UnreadableImage(number) from exc
    # Outside the try: a full disk while writing the ZIP is not the image's fault.
    archive.writestr(_entry(name, zipfile.ZIP_STORED), data)


def _training_jpeg(item: TrainingItem) -> bytes:
    """The item as 1024² RGB JPEG bytes: its own bytes when already so, else re-encoded."""
    with item.open() as source, Image.open(source, formats=ACCEPTED_FORMATS) as im:
        if _usable_as_is(im):
            im.load()  # a truncated file must fail here, not in the $2 training run
            source.seek(0)
            return source.read()
        return _to_training_jpeg(im)


def _usable_as_is(im: Image.Image) -> bool:
    """Already a plain upright 1024² RGB JPEG in sRGB: copying its bytes loses nothing."""
    return (
        im.format == "JPEG"
        and im.size == SIZE
        and im.mode == "RGB"
        and im.getexif().get(_EXIF_ORIENTATION, 1) == 1
        and not im.info.get("icc_profile")
    )


def _to_training_jpeg(im: Image.Image) -> bytes:
    if im.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while still covering 1024² (a 4000 px
        # photo then never exists in memory at full size). Both sides must stay ≥ 1024 since
        # fit() crops the short side to 1024, whichever way EXIF turns the image.
        im.draft("RGB", SIZE)
    # In place: the default returns a full copy even when there is nothing to turn.
    ImageOps.exif_transpose(im, in_place=True)
    rgb = to_srgb(im)
    if rgb.size != SIZE:
        rgb = ImageOps.fit(rgb, SIZE, Image.Resampling.LANCZOS)
    rgb.info = {}  # pixels only: no comment or other metadata rides along from the source
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _entry(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = compression
    info.external_attr = _FILE_MODE
    return info


def _sha256(dest: BinaryIO, start: int, end: int) -> str:
    digest = hashlib.sha256()
    dest.seek(start)
    remaining = end - start
    while remaining > 0:
        chunk = dest.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    dest.seek(end)
    return digest.hexdigest()
