"""What a stored cut is, whatever fal sends back: a 1024x1024 upright RGB JPEG."""

import io

from PIL import Image

from characters.generation import CUT_SIZE, normalize_cut


def _jpeg(size=CUT_SIZE, mode="RGB", exif=None) -> bytes:
    buf = io.BytesIO()
    image = Image.new(mode, size, (30, 200, 90) if mode == "RGB" else 0)
    image.paste((250, 20, 20) if mode == "RGB" else 255, (0, 0, size[0] // 4, size[1] // 8))
    image.save(buf, "JPEG", quality=90, **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_result_already_in_the_stored_form_is_kept_byte_for_byte():
    data = _jpeg()
    assert normalize_cut(data) == data


def test_a_sideways_result_is_stored_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    data = _jpeg(exif=exif.tobytes())
    out = _open(normalize_cut(data))
    assert out.size == CUT_SIZE and out.format == "JPEG"
    assert out.getexif().get(0x0112, 1) == 1
    # The red band drawn along the top-left edge now runs down the right side's top corner.
    assert out.getpixel((CUT_SIZE[0] - 20, 20))[0] > 180


def test_png_grey_and_other_sizes_become_a_1024_rgb_jpeg():
    png = io.BytesIO()
    Image.new("RGBA", (768, 1344), (10, 10, 240, 255)).save(png, "PNG")
    for data in (png.getvalue(), _jpeg(mode="L"), _jpeg(size=(1024, 1536))):
        out = _open(normalize_cut(data))
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", CUT_SIZE)
