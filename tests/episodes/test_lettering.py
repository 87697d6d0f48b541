"""Korean webtoon lettering (식자): each bubble kind's face and shape, line breaks at spaces
that keep jamo runs and numbers whole, colour emoji, the 18 px minimum (the bubble grows, the
editor warns before it), and new bubbles that never land on one another."""

import itertools
import math
import unicodedata
from importlib import import_module

import pytest
from django.apps import apps
from PIL import Image

from episodes import rendering, services
from episodes.models import Bubble
from episodes.rendering import BubbleSpec, PanelSpec, fit_text, korean_font, units, wrap
from tests.episodes.helpers import api, episode, uploaded_panel

GRAY = (128, 128, 128)
TEXT = "사장님 환급금 나왔어요"


def drawn(kind: str, text: str = "", tail=None, size=(800, 600)) -> Image.Image:
    """One bubble at (200, 150)-(600, 450) on a plain grey panel 800 x 600."""
    tx, ty = tail or (None, None)
    spec = BubbleSpec(kind, text, 0.25, 0.25, 0.5, 0.5, tail_x=tx, tail_y=ty, font_size=30)
    panel, _ = rendering.render_panel(PanelSpec(Image.new("RGB", size, GRAY), size[1], [spec]))
    return panel


def is_gray(pixel) -> bool:
    return all(abs(c - g) <= 12 for c, g in zip(pixel, GRAY, strict=True))


def is_dark(pixel) -> bool:
    return max(pixel) < 90


def ring_dark(panel, angle: float) -> bool:
    """Whether the outline (drawn just outside the box's ellipse) is dark in this direction."""
    return any(is_dark(edge(panel, angle, k)) for k in (0.995, 1.005, 1.012, 1.02))


def edge(panel, angle: float, k: float = 1.0):
    """The pixel at `k` times the bubble's radii in direction `angle` (centre 400, 300)."""
    return panel.getpixel((round(400 + 200 * k * math.cos(angle)),
                           round(300 + 150 * k * math.sin(angle))))


ANGLES = [2 * math.pi * i / 72 for i in range(72)]


# --- faces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "font"),
    [("speech", "NanumGothic.ttf"), ("shout", "NanumGothicExtraBold.ttf"),
     ("thought", "NanumGothicLight.ttf"), ("whisper", "NanumGothic.ttf"),
     ("narration", "NanumMyeongjo.ttf"), ("caption", "NanumGothicBold.ttf")],
)
def test_each_kind_letters_in_its_own_face(kind, font):
    assert rendering.font_path(rendering.lettering(kind).face).name == font


def ink(kind: str) -> int:
    """Dark pixels of the same text drawn in the kind's bubble (its outline left out)."""
    panel = drawn(kind, TEXT).crop((270, 230, 530, 370)).convert("L")
    return sum(1 for v in panel.tobytes() if v < 100)


def test_shout_is_heavier_and_thought_lighter_than_speech():
    assert ink("thought") < ink("speech") < ink("shout")


def test_narration_is_set_in_myeongjo_not_gothic():
    def glyph(face):
        image = Image.new("L", (80, 80))
        from PIL import ImageDraw
        ImageDraw.Draw(image).text((5, 5), "름", font=korean_font(60, face), fill=255)
        return image.tobytes()

    assert glyph(rendering.lettering("narration").face) != glyph("regular")


# --- shapes --------------------------------------------------------------------------------------
def test_speech_is_an_ellipse_with_a_solid_outline():
    panel = drawn("speech")
    assert all(ring_dark(panel, a) for a in ANGLES)
    assert is_gray(panel.getpixel((205, 155)))  # the box's corner is outside an ellipse


def test_whisper_is_an_ellipse_with_a_dashed_outline():
    panel = drawn("whisper")
    dark = [ring_dark(panel, a) for a in ANGLES]
    assert 0.3 < sum(dark) / len(dark) < 0.85  # dashes and gaps
    assert all(not is_gray(edge(panel, a, 0.9)) for a in ANGLES)  # white inside


def test_shout_is_a_spiky_burst():
    panel = drawn("shout")
    # Spikes reach out to the box's ellipse; between them the panel shows through.
    outer = [not is_gray(edge(panel, a, 0.97)) for a in ANGLES]
    assert 0.05 < sum(outer) / len(outer) < 0.7
    assert all(not is_gray(edge(panel, a, 0.7)) for a in ANGLES)  # a solid body inside
    points = rendering.burst_points((200, 150, 600, 450))
    radii = [math.hypot((x - 400) / 200, (y - 300) / 150) for x, y in points]
    assert max(radii) == pytest.approx(1.0) and min(radii) < 0.8


def test_thought_is_a_cloud_of_puffs():
    panel = drawn("thought")
    # The scalloped edge: puffs touch the ellipse, dips between them do not.
    rim = [is_gray(edge(panel, a, 0.96)) for a in ANGLES]
    assert 0.1 < sum(rim) / len(rim) < 0.9
    assert all(not is_gray(edge(panel, a, 0.6)) for a in ANGLES)


def test_narration_is_a_box_and_caption_a_dark_tag():
    narration = drawn("narration")
    assert narration.getpixel((206, 156)) == rendering.NARRATION_FILL[:3]  # square corner
    caption = drawn("caption")
    assert max(caption.getpixel((220, 170))) < 80
    # The caption's text is white on the dark tag.
    assert max(drawn("caption", TEXT).crop((270, 260, 530, 340)).convert("L").tobytes()) > 230


@pytest.mark.parametrize("kind", ["speech", "shout", "thought", "whisper"])
def test_tails_reach_the_point_they_aim_at(kind):
    panel = drawn(kind, "네", tail=(0.5, 0.95))
    column = [panel.getpixel((400, y)) for y in range(455, 600)]
    lowest = max(y for y, p in zip(range(455, 600), column, strict=True) if not is_gray(p))
    assert abs(lowest - 0.95 * 600) <= 8


@pytest.mark.parametrize("kind", ["speech", "shout", "thought", "whisper", "narration"])
def test_text_is_centred_in_every_kind(kind):
    plain = drawn(kind)
    lettered = drawn(kind, "가나다")
    diff = [(x, y) for x in range(200, 600) for y in range(150, 450)
            if plain.getpixel((x, y)) != lettered.getpixel((x, y))]
    xs, ys = [x for x, _ in diff], [y for _, y in diff]
    assert abs((min(xs) + max(xs)) / 2 - 400) <= 4
    assert abs((min(ys) + max(ys)) / 2 - 300) <= 6


# --- line breaking -------------------------------------------------------------------------------
def test_units_keep_jamo_runs_numbers_latin_words_and_emoji_whole():
    assert units("진짜ㅋㅋㅋㅋ") == ["진", "짜", "ㅋㅋㅋㅋ"]
    assert units("₩1,234,567원이나!") == ["₩1,234,567", "원", "이", "나!"]
    assert units("ㅠㅠ") == ["ㅠㅠ"]
    assert units("(5월31일)까지요.") == ["(5", "월", "31", "일)", "까", "지", "요."]
    assert units("OK입니다") == ["OK", "입", "니", "다"]
    assert units("좋아👍🏽요") == ["좋", "아", "👍🏽", "요"]


def test_lines_break_at_spaces_before_anything_else():
    font = korean_font(26)
    lines, split = wrap("ㅋㅋㅋ 진짜 웃기다 ㅠㅠ 환급금 ₩1,234,567", font, 170)
    assert not split
    assert " ".join(lines) == "ㅋㅋㅋ 진짜 웃기다 ㅠㅠ 환급금 ₩1,234,567"
    assert "₩1,234,567" in lines


def test_a_long_word_is_split_between_units_keeping_jamo_runs_whole():
    font = korean_font(18)
    word = "아니진짜너무웃겨서ㅋㅋㅋㅋㅋ"
    width = font.getlength("아니진짜너무웃") + 2
    lines, split = wrap(word, font, width)
    assert split and "".join(lines) == word
    assert any(line.endswith("ㅋㅋㅋㅋㅋ") for line in lines)
    assert all(font.getlength(line) <= width for line in lines)


def test_a_number_is_never_cut_while_it_fits_a_line():
    font = korean_font(18)
    word = "환급금은₩1,234,567원이었습니다"
    width = font.getlength("₩1,234,567") + 4
    lines, split = wrap(word, font, width)
    assert split and "₩1,234,567" in lines and "".join(lines) == word


def test_lines_never_break_inside_a_syllable_even_from_separate_jamo():
    decomposed = unicodedata.normalize("NFD", "종합소득세신고기간입니다")
    fit = fit_text(decomposed, 60, 400, size=18)
    assert all(unicodedata.is_normalized("NFC", line) for line in fit.lines)
    assert "".join(fit.lines) == "종합소득세신고기간입니다"


def test_fitting_shrinks_the_font_before_splitting_a_jamo_run():
    text = "진짜요? ㅋㅋㅋㅋㅋㅋ"
    width = korean_font(22).getlength("ㅋㅋㅋㅋㅋㅋ") + 1
    fit = fit_text(text, width, 200, size=30)
    assert fit.fits and not fit.split_word and fit.size <= 22
    assert "ㅋㅋㅋㅋㅋㅋ" in fit.lines


# --- emoji ---------------------------------------------------------------------------------------
def test_emoji_are_drawn_in_colour_not_as_boxes():
    panel = drawn("speech", "좋아요 😀")
    inside = panel.crop((260, 220, 540, 380))
    colourful = [p for p in inside.get_flattened_data() if max(p) - min(p) > 120]
    assert len(colourful) > 100  # yellow face pixels, not a black "tofu" outline
    assert rendering.runs("좋아요 😀") == [("좋아요 ", False), ("😀", True)]


def test_an_emoji_is_as_wide_as_a_character_of_the_text():
    font = korean_font(30)
    width = rendering.text_length("😀", font)
    assert 0.8 * 30 <= width <= 1.3 * 30
    assert rendering.text_length("가😀", font) == pytest.approx(font.getlength("가") + width)


def test_symbols_the_korean_font_has_stay_text():
    assert rendering.runs("★ ♥") == [("★ ♥", False)]
    assert rendering.runs("❤️") == [("❤️", True)]  # asked for as emoji (VS16)


# --- the 18 px minimum ---------------------------------------------------------------------------
def test_text_never_shrinks_below_18px_at_800():
    assert rendering.MIN_FONT_SIZE == 18
    fit = fit_text("가나다라 " * 200, 200, 80, size=26)
    assert fit.size == 18 and not fit.fits
    spec = BubbleSpec("speech", "가나다라 " * 50, 0.1, 0.1, 0.2, 0.1, font_size=14)
    assert rendering.bubble_fit(spec, 1000).size >= 18  # an old 14 px bubble comes up to 18


@pytest.mark.django_db
def test_text_too_long_at_18px_grows_its_bubble_until_it_fits(user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    bubble = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech")
    before = (bubble.w, bubble.h)
    text = "사장님, 올해 종합소득세 신고 기간은 5월 1일부터 31일까지예요. " * 4
    bubble = services.update_bubble(owner=user, bubble_id=bubble.public_id, text=text)
    fit = services.bubble_fit(bubble)
    assert fit.fits and not fit.split_word and fit.size >= 18
    assert bubble.w > before[0] and bubble.h > before[1]
    assert 0 <= bubble.x <= 1 - bubble.w and 0 <= bubble.y <= 1 - bubble.h


@pytest.mark.django_db
def test_a_bubble_with_no_room_to_grow_keeps_its_size_and_warns(user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    services.set_panel_height(owner=user, panel_id=panel.public_id, height=200)
    bubble = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech")
    size = (bubble.w, bubble.h)
    bubble = services.update_bubble(owner=user, bubble_id=bubble.public_id, text="가나다 " * 120)
    assert (bubble.w, bubble.h) == size
    note, warning = services.fit_note(services.bubble_fit(bubble), bubble.font_size)
    assert warning and "최소 18px로도" in note


def test_the_editor_warns_before_the_minimum_is_reached():
    near = rendering.Fit(20, ["가"], 26, True, shrunk=True)
    note, warning = services.fit_note(near, 26)
    assert warning and "20px까지 작아졌습니다 (최소 18px)" in note
    roomy = rendering.Fit(24, ["가"], 32, True, shrunk=True)
    assert services.fit_note(roomy, 26) == ("글자를 24px로 줄였습니다.", False)


# --- placement -----------------------------------------------------------------------------------
def overlaps(a: Bubble, b: Bubble) -> bool:
    return (a.x < b.x + b.w and b.x < a.x + a.w) and (a.y < b.y + b.h and b.y < a.y + a.h)


@pytest.mark.django_db
def test_new_bubbles_never_land_on_one_another(alice_client, user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    for kind in ("speech", "speech", "shout", "thought", "whisper", "narration", "caption"):
        response = api(alice_client, "post", f"panel/{panel.public_id}/bubbles", {"kind": kind})
        assert response.status_code == 201
    bubbles = list(Bubble.objects.all())
    assert not [(a.kind, b.kind) for a, b in itertools.combinations(bubbles, 2) if overlaps(a, b)]
    for b in bubbles:
        assert 0 <= b.x <= 1 - b.w + 1e-9 and 0 <= b.y <= 1 - b.h + 1e-9
        if b.has_tail:  # the tail moved along with its bubble
            assert b.y + b.h <= b.tail_y + 0.2


@pytest.mark.django_db
def test_a_bubble_placed_by_hand_stays_where_it_was_put(user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    first = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech")
    second = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech",
                                 x=first.x, y=first.y)
    assert (second.x, second.y) == (first.x, first.y)


@pytest.mark.django_db
def test_older_bubbles_under_18px_come_up_to_it(user):
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    old = services.add_bubble(owner=user, panel_id=panel.public_id, kind="speech", text="작은 글")
    Bubble.objects.filter(pk=old.pk).update(font_size=14)  # allowed before the 18 px minimum
    migration = import_module("episodes.migrations.0003_platform_presets_lettering_kinds")
    migration.raise_small_fonts(apps, None)
    assert Bubble.objects.get(pk=old.pk).font_size == 18
