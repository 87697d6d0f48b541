"""Step 1: the uploaded photo. Validated by content, decoded, re-encoded, checked for a face.

Nothing the user sent is ever stored or served as-is: the pixels are decoded in full and
written out as a fresh JPEG, which drops EXIF/GPS, comments and any bytes smuggled after
the image data. Every rejection happens before anything is written.
"""

from __future__ import annotations

import io
import logging
import warnings

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from webtoon.accounts.throttle import check_action
from webtoon.exceptions import DomainError
from webtoon.imaging.pixels import to_srgb
from webtoon.media import user_file_name

from .faces import detect_face
from .models import Photo

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = ["JPEG", "PNG", "WEBP"]
MAX_PIXELS = 50_000_000
# JPEG cannot store a side over 65,535 px; no real photo comes close to this.
MAX_SIDE = 16_384
MIN_RECOMMENDED_SIDE = 512
JPEG_QUALITY = 95


class PhotoRejected(DomainError):
    """The upload cannot be used; the message tells the user why (Korean)."""

    status_code = 422


def unsupported_format() -> PhotoRejected:
    return PhotoRejected(_("JPG, PNG, WEBP만 지원합니다"), status_code=415)


def upload_photo(*, owner, upload: File | None, consent: bool) -> Photo:
    """Validate, clean and store one uploaded photo for `owner`; raises PhotoRejected.

    Writes the re-encoded JPEG to default storage and creates the Photo row; on any
    rejection neither exists.
    """
    if not consent:
        raise PhotoRejected(_("사진 사용 권리에 동의해주세요"))
    if upload is None:
        raise PhotoRejected(_("사진 파일을 선택해주세요."))
    check_action(owner, "upload")  # decoding pictures costs CPU: RATE_LIMIT_UPLOADS
    check_file_size(upload.size)
    image, source_format = decode_photo(upload)
    face_box = detect_face(image)
    return store_photo(
        owner=owner,
        image=image,
        source_format=source_format,
        face_box=face_box,
        warnings=photo_warnings(image.size, face_box),
    )


def check_file_size(size: int | None) -> None:
    limit = settings.MAX_UPLOAD_BYTES
    if not size:
        raise PhotoRejected(_("빈 파일입니다. 사진 파일을 다시 선택해주세요."), status_code=400)
    if size > limit:
        raise PhotoRejected(
            _("파일이 너무 큽니다. 최대 %(mb)dMB까지 올릴 수 있습니다.") % {"mb": limit // 2**20},
            status_code=413,
        )


def decode_photo(upload: File) -> tuple[Image.Image, str]:
    """The photo as an upright RGB image, and the format its bytes really were."""
    upload.seek(0)
    # A bomb's header already says how big it is: Pillow warns (or raises) in open().
    # catch_warnings swaps a process-wide filter list; a race with another thread can at
    # worst turn this same warning into an error there too, which is what we want anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = _open(upload)
    with im:
        _check_dimensions(im)
        _check_single_frame(im)
        source_format = "JPEG" if im.format == "MPO" else im.format
        try:
            im.load()
            rgb = to_srgb(_upright(im))
        except Exception as exc:
            # Pillow reports truncated or corrupt data through many exception types
            # (OSError, SyntaxError, ValueError, EOFError, struct.error, ...): all mean
            # the same thing to the user.
            logger.info("undecodable %s upload: %r", source_format, exc)
            raise PhotoRejected(
                _("이미지가 손상되었거나 일부만 전송되었습니다. 다른 사진을 올려주세요."),
                status_code=400,
            ) from exc
    return rgb, source_format


def _upright(im: Image.Image) -> Image.Image:
    """The EXIF orientation applied. EXIF that cannot be parsed (junk in a PNG eXIf chunk or
    a WEBP EXIF chunk) is metadata we drop anyway, not damage to the pixels: it is ignored,
    as Pillow already ignores it in a JPEG."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:  # SyntaxError, struct.error, ... from Pillow's TIFF parser
        logger.info("unreadable EXIF ignored: %r", exc)
        return im


def _open(upload: File) -> Image.Image:
    try:
        return Image.open(upload, formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as exc:
        raise unsupported_format() from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except Exception as exc:  # a recognised header that Pillow then failed to parse
        logger.info("unreadable image header: %r", exc)
        raise unsupported_format() from exc


def _too_many_pixels() -> PhotoRejected:
    return PhotoRejected(
        _("이미지 해상도가 너무 큽니다. 5,000만 화소 이하의 사진을 올려주세요."),
    )


def _check_dimensions(im: Image.Image) -> None:
    width, height = im.size
    if width < 1 or height < 1:
        raise unsupported_format()
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise _too_many_pixels()


def _check_single_frame(im: Image.Image) -> None:
    # MPO is a phone-camera JPEG with extra pictures (previews, depth) after the photo;
    # its first frame is the photo itself. Animated PNG/WEBP have no single photo.
    if im.format != "MPO" and getattr(im, "n_frames", 1) > 1:
        raise PhotoRejected(
            _("움직이는 이미지는 지원하지 않습니다. 한 장짜리 사진을 올려주세요."),
        )


def photo_warnings(size: tuple[int, int], face_box: dict | None) -> list[str]:
    found = []
    if min(size) < MIN_RECOMMENDED_SIDE:
        found.append(_("최소 512×512 이상 권장합니다"))
    if face_box is None:
        found.append(_("얼굴을 찾지 못했습니다. 정면 얼굴 사진을 권장합니다."))
    return found


def store_photo(
    *, owner, image: Image.Image, source_format: str, face_box: dict | None, warnings: list[str]
) -> Photo:
    buf = io.BytesIO()
    image.info = {}  # nothing from the upload (comment, XMP, EXIF) rides along
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    name = default_storage.save(
        user_file_name(owner.pk, "photos", "jpg"), ContentFile(buf.getvalue())
    )
    try:
        return Photo.objects.create(
            owner=owner,
            image=name,
            width=image.width,
            height=image.height,
            source_format=source_format,
            face_detected=face_box is not None,
            face_box=face_box,
            warnings=warnings,
            consent_at=timezone.now(),
        )
    except BaseException:
        default_storage.delete(name)
        raise

