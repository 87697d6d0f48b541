"""Korean text in bubbles (wrapping, fitting, never overflowing) and the strip's geometry."""

import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from episodes import platforms, rendering, services
from episodes.models import Export
from episodes.rendering import BubbleSpec, PanelSpec, fit_text, korean_font, slice_ranges, wrap
from tests.episodes.helpers import episode, uploaded_panel

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
LONG_SENTENCE = (
    "사장님, 올해 종합소득세 신고 기간은 5월 1일부터 5월 31일까지이고 "
    "간편장부 대상자라면 경비 영수증을 꼭 챙겨두셔야 합니다"
)


def _width(line: str, size: int, face: str = "regular") -> float:
    return korean_font(size, face).getlength(line)


# --- wrapping ------------------------------------------------------------------------------------
def test_wrap_breaks_korean_only_at_spaces_when_every_word_fits():
    font = korean_font(26)
    lines, split = wrap(LONG_SENTENCE, font, 300)
    assert not split
    assert len(lines) > 3
    assert " ".join(lines) == LONG_SENTENCE  # no word was cut, none lost
    assert all(font.getlength(line) <= 300 for line in lines)
    words = set(LONG_SENTENCE.split())
    assert all(set(line.split()) <= words for line in lines)


def test_wrap_splits_a_word_longer_than_the_line_between_syllables():
    font = korean_font(26)
    word = "가나다라마바사아자차카타파하" * 2
    lines, split = wrap(f"앞 {word}", font, 150)
    assert split
    assert lines[0] == "앞"  # the short word before it is not glued to the pieces
    assert "".join(lines[1:]) == word
    assert len(lines) > 3
    assert all(font.getlength(line) <= 150 for line in lines)


def test_wrap_never_starts_a_line_with_closing_punctuation():
    font = korean_font(26)
    text = "가" * 40 + "."
    for width in range(60, 400, 7):
        lines, _ = wrap(text, font, width)
        assert all(not line.startswith(".") for line in lines), width
        assert "".join(lines) == text


def test_wrap_keeps_explicit_line_breaks():
    lines, _ = wrap("첫 줄\n\n셋째 줄", korean_font(20), 500)
    assert lines == ["첫 줄", "", "셋째 줄"]


def test_text_typed_as_separate_jamo_is_joined_into_syllables():
    decomposed = unicodedata.normalize("NFD", "세금 신고")
    assert len(decomposed) > len("세금 신고")
    fit = fit_text(decomposed, 400, 100, size=24)
    assert fit.lines == ["세금 신고"]


# --- fitting -------------------------------------------------------------------------------------
def test_fit_keeps_a_won_amount_whole_by_shrinking_the_font():
    text = "환급 예상액 ₩1,234,567 확정"
    width = _width("₩1,234,567", 26, face="bold") - 10  # too narrow at 26 px
    fit = fit_text(text, width, 400, size=26, face="bold")
    assert fit.fits and fit.shrunk and not fit.split_word
    assert fit.size < 26
    assert "₩1,234,567" in fit.lines
    assert " ".join(fit.lines) == text


def test_fit_prefers_a_smaller_font_to_splitting_a_number():
    # "₩1,234,567원입니다" fits on one line only at a smaller size: the number is not split.
    text = "합계 ₩1,234,567원입니다"
    width = _width("₩1,234,567원입니다", 20)
    fit = fit_text(text, width, 200, size=30)
    assert fit.fits and not fit.split_word
    assert any("₩1,234,567" in line for line in fit.lines)
    assert fit.size <= 20


def test_fit_long_korean_sentence_in_a_speech_bubble_stays_inside():
    box_w, box_h = rendering.text_box("speech", 400, 200)
    fit = fit_text(LONG_SENTENCE, box_w, box_h, size=26, face="bold")
    assert fit.fits and fit.shrunk and not fit.split_word
    assert rendering.MIN_FONT_SIZE <= fit.size < 26
    assert fit.height <= box_h
    assert all(_width(line, fit.size, face="bold") <= box_w for line in fit.lines)
    assert " ".join(fit.lines) == LONG_SENTENCE


def test_fit_that_fits_at_the_wanted_size_is_not_shrunk():
    fit = fit_text("네, 알겠습니다!", 300, 100, size=26)
    assert fit.fits and not fit.shrunk and fit.size == 26 and fit.lines == ["네, 알겠습니다!"]


def test_fit_too_much_text_is_cut_with_an_ellipsis_and_never_overflows():
    text = LONG_SENTENCE * 6
    fit = fit_text(text, 200, 80, size=26)
    assert not fit.fits
    assert fit.size == rendering.MIN_FONT_SIZE
    assert fit.lines[-1].endswith("…")
    assert fit.height <= 80
    assert all(_width(line, fit.size) <= 200 for line in fit.lines)


def test_fit_empty_text_has_no_lines():
    fit = fit_text("   ", 100, 100, size=20)
    assert fit.fits and fit.lines == []


# --- drawing -------------------------------------------------------------------------------------
def _changed_box(before: Image.Image, after: Image.Image):
    return ImageChops.difference(before.convert("RGB"), after.convert("RGB")).getbbox()


@pytest.mark.parametrize("kind", ["speech", "thought", "narration", "caption"])
def test_drawn_text_stays_inside_its_bubble(kind):
    picture = Image.new("RGB", (640, 480), (90, 140, 200))
    bubble = BubbleSpec(kind, LONG_SENTENCE * 4, 0.25, 0.25, 0.4, 0.2, font_size=30)
    panel, warnings = rendering.render_panel(PanelSpec(picture, 600, [bubble], "1번째 컷"))
    assert panel.size == (800, 600)
    plain, _ = rendering.render_panel(PanelSpec(picture, 600, [], "1번째 컷"))
    left, top, right, bottom = _changed_box(plain, panel)
    # The bubble is 320 x 120 at (200, 150); its outline may reach a few px beyond.
    assert left >= 200 - 8 and top >= 150 - 8 and right <= 520 + 8 and bottom <= 270 + 8
    assert len(warnings) == 1 and "1번째 컷" in warnings[0] and "잘랐습니다" in warnings[0]


def test_speech_bubble_tail_reaches_the_point_it_aims_at():
    picture = Image.new("RGB", (800, 600), (90, 140, 200))
    bubble = BubbleSpec("speech", "안녕하세요", 0.1, 0.1, 0.4, 0.2, tail_x=0.5, tail_y=0.8)
    panel, warnings = rendering.render_panel(PanelSpec(picture, 600, [bubble]))
    assert warnings == []
    plain, _ = rendering.render_panel(PanelSpec(picture, 600, []))
    _, _, _, bottom = _changed_box(plain, panel)
    assert abs(bottom - 0.8 * 600) <= 6  # the tip is at the tail point, not above it


def test_panel_picture_is_cropped_to_fill_the_chosen_height():
    picture = Image.new("RGB", (1024, 576), (10, 200, 10))
    panel, _ = rendering.render_panel(PanelSpec(picture, 1000, []))
    assert panel.size == (800, 1000)
    assert panel.getpixel((0, 0)) == panel.getpixel((799, 999)) == (10, 200, 10)


# --- the strip -----------------------------------------------------------------------------------
def test_compose_strip_stacks_panels_with_gutters():
    panels = [Image.new("RGB", (800, h), (0, 0, 0)) for h in (1067, 450, 600)]
    strip, gutters = rendering.compose_strip(panels)
    assert strip.size == (800, 1067 + 450 + 600 + 2 * rendering.GUTTER)
    assert gutters == [(1067, 1107), (1557, 1597)]
    assert strip.getpixel((400, 1080)) == (255, 255, 255)


def test_slices_are_cut_in_gutters_when_they_can_be():
    ranges = slice_ranges(2197, [(1067, 1107), (1557, 1597)], 1280)
    assert ranges == [(0, 1087), (1087, 2197)]


def test_a_panel_taller_than_the_maximum_is_cut_through():
    ranges = slice_ranges(3000, [], 1280)
    assert ranges == [(0, 1280), (1280, 2560), (2560, 3000)]


def test_a_gutter_too_close_to_the_top_is_not_used():
    # Cutting at 300 would leave a piece under half the maximum: cut at 1280 instead.
    assert slice_ranges(2000, [(280, 320)], 1280) == [(0, 1280), (1280, 2000)]


@pytest.mark.parametrize("total", [1, 1279, 1280, 1281, 5000, 12345])
def test_slices_cover_the_strip_exactly_and_respect_the_maximum(total):
    gutters = [(y, y + 40) for y in range(900, total - 40, 1000)]
    ranges = slice_ranges(total, gutters, 1280)
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(0 < bottom - top <= 1280 for top, bottom in ranges)


# --- the font ------------------------------------------------------------------------------------
def test_a_missing_korean_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(rendering, "DEBIAN_NANUM", tmp_path)
    monkeypatch.setattr(rendering, "FONT_PACKAGES", ())
    rendering.font_path.cache_clear()
    try:
        with pytest.raises(rendering.FontMissing) as exc:
            rendering.font_path()
        assert "fonts-nanum" in str(exc.value) and "NanumGothic.ttf" in str(exc.value)
    finally:
        rendering.font_path.cache_clear()


def test_the_font_draws_hangul_not_boxes():
    def glyph(char):
        image = Image.new("L", (60, 60))
        ImageDraw.Draw(image).text((5, 5), char, font=korean_font(40), fill=255)
        return image

    # A font without Hangul draws every syllable as the same "tofu" box.
    assert ImageChops.difference(glyph("가"), glyph("힣")).getbbox() is not None
    assert glyph("가").getbbox() is not None
    assert rendering.font_path().name == "NanumGothic.ttf"


# --- gutter-first slicing ------------------------------------------------------------------------
def busy_strip(height: int, quiet: tuple[int, int] | None = None) -> Image.Image:
    """Line-art-like stripes everywhere (every row has detail), flat white in `quiet`."""
    strip = Image.new("RGB", (800, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for x in range(0, 800, 6):
        draw.line([(x, 0), (x, height)], fill=(0, 0, 0), width=2)
    if quiet:
        draw.rectangle((0, quiet[0], 799, quiet[1]), fill=(255, 255, 255))
    return strip


def test_a_gutter_in_reach_wins_over_a_quieter_row():
    strip = busy_strip(2400, quiet=(1150, 1250))
    costs = rendering.cut_costs(strip)
    ranges = slice_ranges(2400, [(800, 840)], 1280, costs=costs)
    assert ranges[0] == (0, 820)  # the gutter (lower half of the reach), not the flat band


def test_without_a_gutter_the_cut_goes_through_the_quietest_rows():
    strip = busy_strip(2400, quiet=(1000, 1040))
    costs = rendering.cut_costs(strip)
    first, *_rest = slice_ranges(2400, [], 1280, costs=costs)
    assert 1000 < first[1] < 1040  # in the flat band, not at the 1280 maximum


def test_the_cut_never_goes_through_a_bubble_when_another_row_is_free():
    strip = busy_strip(2400, quiet=(1000, 1040))
    costs = rendering.cut_costs(strip)
    bubble = (900, 1100)  # a bubble over the flat band
    first, *_rest = slice_ranges(2400, [], 1280, keep_out=[bubble], costs=costs)
    assert not bubble[0] < first[1] < bubble[1]
    assert 640 <= first[1] <= 1280


def test_a_higher_gutter_beats_cutting_through_a_bubble():
    # A bubble covers the whole lower half of the reach: a shorter piece ends in the gutter.
    ranges = slice_ranges(3000, [(400, 440)], 1280, keep_out=[(600, 1400)])
    assert ranges[0] == (0, 420)


def test_bubble_bands_cover_the_bubble_and_its_tail():
    spec = BubbleSpec("speech", "네", 0.1, 0.2, 0.4, 0.2, tail_x=0.3, tail_y=0.7)
    assert rendering.bubble_bands([spec], 1000, top=500) == [(500 + 200 - 6, 500 + 700 + 6)]


@pytest.mark.django_db
def test_an_export_does_not_slice_through_a_bubble(user, django_capture_on_commit_callbacks):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    services.set_panel_height(owner=user, panel_id=panel.public_id, height=2400)
    # A bubble right where a plain 1280 px cut would go (y 1180-1420 of 2400).
    services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech",
                        text="여기서 자르면 안 돼요", x=0.2, y=1180 / 2400, w=0.6, h=240 / 2400)
    with django_capture_on_commit_callbacks(execute=True):
        export = services.request_export(owner=user, episode_id=ep.public_id,
                                         preset="webtoon_canvas", fmt="jpeg")
    export = Export.objects.get(pk=export.pk)
    assert export.state == "succeeded"
    cuts = [image["top"] for image in export.images[1:]]
    assert cuts and all(not 1180 - 6 < cut < 1420 + 6 for cut in cuts)
    assert all(image["height"] <= 1280 for image in export.images)


def test_the_cut_goes_around_a_face():
    # Grace Hopper's portrait (face in rows 830-1152) on busy stripes: the quietest rows in
    # reach run through her face, so without faces the cut would be at 876.
    photo = Image.open(TESTDATA / "grace_hopper.jpg").convert("RGB").resize((800, 800))
    picture = busy_strip(2400)
    picture.paste(photo, (0, 700))
    costs = rendering.cut_costs(picture)
    first, *_rest = slice_ranges(2400, [], 1280, costs=costs)
    assert 830 < first[1] < 1152  # through the face, when nothing says where it is
    (face,) = platforms.face_bands(picture)
    assert face[0] <= 850 and face[1] >= 1100
    _strip, plan = platforms.export_strip(
        [(picture, [])], platforms.PLATFORMS["webtoon_canvas"], "jpeg", 1280)
    assert not any(face[0] < bottom < face[1] for _top, bottom in plan.ranges)


def test_no_slice_is_a_sliver():
    # 1300 px with nothing to go by: not 1280 + 20, but a cut that leaves a real last piece.
    assert slice_ranges(1300, [], 1280) == [(0, 980), (980, 1300)]
    assert all(b - t >= 320 for t, b in slice_ranges(2600, [(1270, 1310)], 1280))
