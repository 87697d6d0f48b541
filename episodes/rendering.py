"""Drawing an episode with Pillow: Korean lettering in bubbles, panels, the strip and its slices.

Nothing here touches the database or storage: services hand in pictures and plain specs.

Sizes are pixels at the strip width (STRIP_WIDTH, 800 px, the usual webtoon width); a strip
drawn at another width scales everything by width / 800.

Lettering follows Korean webtoon 식자 conventions: text centred in the middle of its bubble,
always horizontal; each kind has its own face and shape (KINDS): speech in regular gothic in an
ellipse, shout in extra-bold gothic in a spiky burst, thought in light gothic in a cloud,
whisper in a dashed ellipse, narration in NanumMyeongjo in a box, caption white on a dark tag.

Text is never drawn by the image model. Lines break at spaces; the font shrinks (1 px at a
time) from the bubble's size down to MIN_FONT_SIZE (18 px at 800) until every word fits whole.
Only at the minimum may a word longer than the line be split, and then only between units
(a Hangul syllable, a jamo run like "ㅋㅋㅋ", a number like "₩1,234,567", a Latin word, an
emoji), never inside one while it fits a line. If the text still does not fit, the last line
ends in "…" and a warning says so (services grow the bubble first): it never spills out.

Emoji are drawn from Noto Color Emoji (Debian's fonts-noto-color-emoji): its colour bitmaps
exist at one size only (109), so each emoji is drawn there and scaled to the text size.
"""

from __future__ import annotations

import importlib.util
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from webtoon.exceptions import DomainError

STRIP_WIDTH = 800
# Each exported image is at most this tall (px) for the "original" preset. 800 x 1280 (5:8)
# keeps every file small enough to load quickly on a phone while a typical portrait panel
# (800 x 1067) still fits in one image. Override with settings.EPISODE_EXPORT_MAX_HEIGHT.
MAX_SLICE_HEIGHT = 1280
GUTTER = 40  # white space between panels (px at 800)
# Readers on phones cannot read smaller lettering: text never shrinks below 18 px at 800 px,
# and the editor warns from WARN_FONT_SIZE down, before the minimum is reached.
MIN_FONT_SIZE = 18
WARN_FONT_SIZE = 21
MAX_FONT_SIZE = 72
LINE_SPACING = 1.3
SUPERSAMPLE = 3  # bubble shapes are drawn 3x and scaled down: smooth edges

# Fonts: Debian's fonts-nanum and fonts-nanum-extra (installed by `make fonts` and .ci/run),
# or a Python package that bundles NanumGothic; nothing is downloaded at run time. Each face
# lists the files it may use, best first: without fonts-nanum-extra, the light and extra-bold
# faces fall back to regular and bold.
DEBIAN_NANUM = Path("/usr/share/fonts/truetype/nanum")
FONT_PACKAGES = ("koreanize_matplotlib",)  # ships fonts/NanumGothic*.ttf
REGULAR_FONT = "NanumGothic.ttf"
FACES: dict[str, tuple[str, ...]] = {
    "regular": (REGULAR_FONT,),
    "bold": ("NanumGothicBold.ttf", REGULAR_FONT),
    "extrabold": ("NanumGothicExtraBold.ttf", "NanumGothicBold.ttf", REGULAR_FONT),
    "light": ("NanumGothicLight.ttf", REGULAR_FONT),
    "serif": ("NanumMyeongjo.ttf", REGULAR_FONT),
}
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_BITMAP_SIZE = 109  # the only size Noto Color Emoji's bitmaps come in
EMOJI_EM = 128  # the bitmaps' height (ascent + descent) at that size


@dataclass(frozen=True)
class Lettering:
    """How one kind of text element looks: its face, the room its shape leaves for text
    (fractions of the box, or a padding for boxes) and whether it may have a tail."""

    face: str
    room: tuple[float, float] | None  # None: a box, text inside `pad` px (at 800)
    pad: int = 0
    tail: bool = False
    text_color: tuple = (20, 20, 20, 255)


KINDS: dict[str, Lettering] = {
    "speech": Lettering("regular", (0.68, 0.66), tail=True),
    # The spikes take more of the box than an ellipse's edge does.
    "shout": Lettering("extrabold", (0.6, 0.56), tail=True),
    "thought": Lettering("light", (0.62, 0.58), tail=True),  # the cloud's puffs
    "whisper": Lettering("regular", (0.68, 0.66), tail=True),
    "narration": Lettering("serif", None, pad=12),
    "caption": Lettering("bold", None, pad=8, text_color=(255, 255, 255, 255)),
}

# A line never starts with these (Korean/Latin closing punctuation) ...
NO_LINE_START = set(".,!?;:)]}%」』〉》】’”…~·、。")
# ... and never ends with these (opening brackets).
NO_LINE_END = set("([{「『〈《【‘“")

BLACK = (20, 20, 20, 255)
WHITE = (255, 255, 255, 255)
NARRATION_FILL = (255, 250, 226, 255)
CAPTION_FILL = (25, 25, 25, 200)


class FontMissing(DomainError):
    status_code = 503


def lettering(kind: str) -> Lettering:
    return KINDS.get(kind, KINDS["speech"])


# --- fonts ---------------------------------------------------------------------------------------
def _font_dirs() -> list[Path]:
    dirs = []
    if configured := getattr(settings, "EPISODE_FONT_DIR", ""):
        dirs.append(Path(configured))
    dirs.append(DEBIAN_NANUM)
    for name in FONT_PACKAGES:
        # find_spec locates the package without importing it (and its dependencies).
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            dirs += [Path(p) / "fonts" for p in spec.submodule_search_locations]
    return dirs


@lru_cache(maxsize=8)
def font_path(face: str = "regular") -> Path:
    # The best file of the face found in any folder, before any fallback file.
    for name in FACES[face]:
        for folder in _font_dirs():
            if (folder / name).is_file():
                return folder / name
    raise FontMissing(
        _(
            "한국어 글꼴(나눔고딕 %(file)s)을 찾을 수 없습니다. 서버에 fonts-nanum 패키지를 "
            "설치해주세요 (apt-get install fonts-nanum)."
        )
        % {"file": REGULAR_FONT}
    )


@lru_cache(maxsize=512)
def korean_font(size: int, face: str = "regular") -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(face)), size)


@lru_cache(maxsize=1)
def emoji_font() -> ImageFont.FreeTypeFont | None:
    """Noto Color Emoji at its bitmap size, or None (emoji are then drawn like text)."""
    path = Path(getattr(settings, "EPISODE_EMOJI_FONT", "") or EMOJI_FONT)
    if not path.is_file():
        return None
    return ImageFont.truetype(str(path), EMOJI_BITMAP_SIZE)


# --- text units: emoji, jamo runs, numbers -------------------------------------------------------
_ZWJ, _VS16, _KEYCAP = "\u200d", "\ufe0f", "\u20e3"
# Symbols that are emoji when asked for (VS16) or when the Korean font has no glyph for them.
_MAYBE_EMOJI = ((0x2190, 0x21FF), (0x2300, 0x23FF), (0x25A0, 0x27BF), (0x2900, 0x297F),
                (0x2B00, 0x2BFF), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3299))


def _is_modifier(char: str) -> bool:
    o = ord(char)
    return (char in (_VS16, _KEYCAP) or 0x1F3FB <= o <= 0x1F3FF or 0xE0020 <= o <= 0xE007F)


@lru_cache(maxsize=2048)
def _korean_font_has(char: str) -> bool:
    # A missing glyph is drawn as the font's "tofu" box: the same mask as a non-character.
    font = korean_font(32)
    return bytes(font.getmask(char)) != bytes(font.getmask("\U0010fffd"))


def _emoji_at(text: str, i: int) -> int:
    """The length of the emoji cluster starting at text[i] (0: none)."""
    if emoji_font() is None:
        return 0
    char, o = text[i], ord(text[i])
    follows = text[i + 1] if i + 1 < len(text) else ""
    if 0x1F000 <= o <= 0x1FAFF:
        pass
    elif char in "0123456789#*" and text[i + 1 : i + 3] == _VS16 + _KEYCAP:
        pass
    elif any(lo <= o <= hi for lo, hi in _MAYBE_EMOJI) or o in (0x00A9, 0x00AE, 0x203C, 0x2049):
        if follows != _VS16 and _korean_font_has(char):
            return 0
    else:
        return 0
    j = i + 1
    regional = 0x1F1E6 <= o <= 0x1F1FF
    if regional and j < len(text) and 0x1F1E6 <= ord(text[j]) <= 0x1F1FF:
        return 2  # a flag: two regional indicators
    while j < len(text):
        if _is_modifier(text[j]):
            j += 1
        elif text[j] == _ZWJ and j + 1 < len(text):
            j += 2
        else:
            break
    return j - i


_NUMBER = re.compile(r"[₩$€¥£+\-]?\d+(?:[.,:/\-]\d+)*%?")  # ₩1,234,567 5.31 010-1234-5678
_LATIN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")


def _is_jamo(char: str) -> bool:
    o = ord(char)
    return 0x3131 <= o <= 0x318E or 0x1100 <= o <= 0x11FF


def units(word: str) -> list[str]:
    """A word cut into the pieces a line may break between: Hangul syllables one by one, but
    a jamo run ("ㅋㅋㅋ", "ㅠㅠ"), a number ("₩1,234,567", "5.31"), a Latin word or an emoji
    whole; closing punctuation stays with what it closes, opening brackets with what follows."""
    pieces: list[str] = []
    i = 0
    while i < len(word):
        if n := _emoji_at(word, i):
            piece = word[i : i + n]
        elif _is_jamo(word[i]):
            n = 1
            while i + n < len(word) and _is_jamo(word[i + n]):
                n += 1
            piece = word[i : i + n]
        elif match := (_NUMBER.match(word, i) or _LATIN.match(word, i)):
            piece = match.group()
        else:
            piece = word[i]
        i += len(piece)
        if pieces and (piece[0] in NO_LINE_START or pieces[-1][-1] in NO_LINE_END):
            pieces[-1] += piece
        else:
            pieces.append(piece)
    return pieces


def runs(line: str) -> list[tuple[str, bool]]:
    """The line as (text, is_emoji) runs, in order."""
    out: list[tuple[str, bool]] = []
    i = start = 0
    while i < len(line):
        if n := _emoji_at(line, i):
            if start < i:
                out.append((line[start:i], False))
            out.append((line[i : i + n], True))
            i = start = i + n
        else:
            i += 1
    if start < len(line):
        out.append((line[start:], False))
    return out


def _emoji_scale(size: int) -> float:
    return size / EMOJI_EM


def text_length(line: str, font: ImageFont.FreeTypeFont) -> float:
    """How wide a line draws in `font`, emoji (scaled to the font size) included."""
    total = 0.0
    for text, is_emoji in runs(line):
        if is_emoji:
            total += emoji_font().getlength(text) * _emoji_scale(font.size)
        else:
            total += font.getlength(text)
    return total


@lru_cache(maxsize=256)
def _emoji_image(cluster: str, size: int) -> Image.Image:
    font = emoji_font()
    width = math.ceil(font.getlength(cluster))
    bitmap = Image.new("RGBA", (max(1, width), EMOJI_EM), (0, 0, 0, 0))
    ImageDraw.Draw(bitmap).text((0, 0), cluster, font=font, embedded_color=True)
    k = _emoji_scale(size)
    target = (max(1, round(width * k)), max(1, round(EMOJI_EM * k)))
    return bitmap.resize(target, Image.Resampling.LANCZOS)


# --- wrapping and fitting ------------------------------------------------------------------------
def normalize(text: str) -> str:
    # NFC: Hangul typed on some systems arrives as separate jamo (NFD); a syllable must be
    # one character so that lines break between syllables, never inside one.
    return unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> tuple[list[str], bool]:
    """Lines no wider than `width`, and whether a word had to be split to get there.

    Explicit line breaks are kept; lines break at spaces; a word longer than a whole line is
    split between units (see `units`), and a unit only when it alone is wider than a line."""
    lines: list[str] = []
    split = False
    for paragraph in normalize(text).split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if text_length(candidate, font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            if text_length(word, font) <= width:
                line = word
                continue
            split = True
            pieces = split_word(word, font, width)
            lines += pieces[:-1]
            line = pieces[-1]
        lines.append(line)
    return lines, split


def split_word(word: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    pieces: list[str] = []
    current = ""
    for unit in units(word):
        if not current or text_length(current + unit, font) <= width:
            current += unit
            continue
        pieces.append(current)
        current = unit
    pieces.append(current)
    # A unit wider than a whole line (a very long number or jamo run): characters, as a last
    # resort, so that nothing is drawn outside the bubble.
    out: list[str] = []
    for piece in pieces:
        out += [piece] if text_length(piece, font) <= width else _split_chars(piece, font, width)
    return out


def _split_chars(text: str, font, width: float) -> list[str]:
    pieces, current = [], ""
    for char in text:
        if current and text_length(current + char, font) > width:
            pieces.append(current)
            current = ""
        current += char
    return [*pieces, current]


@dataclass
class Fit:
    size: int  # the font size used (px in the drawing)
    lines: list[str]
    line_height: int
    fits: bool  # False: the text was cut to stay inside the box
    split_word: bool = False
    shrunk: bool = False

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)


def line_height(size: int) -> int:
    return math.ceil(size * LINE_SPACING)


def _fits(lines: list[str], font, size: int, width: float, height: float) -> bool:
    if line_height(size) * len(lines) > height:
        return False
    return all(text_length(line, font) <= width for line in lines)


def fit_text(
    text: str,
    width: float,
    height: float,
    *,
    size: int,
    min_size: int = MIN_FONT_SIZE,
    face: str = "regular",
) -> Fit:
    """The largest font size (from `size` down to `min_size`) at which the text fits the box
    with every word whole; at `min_size`, words may be split; failing that, the text is cut."""
    size = max(size, min_size)
    text = normalize(text).strip()
    if not text:
        return Fit(size, [], line_height(size), True)
    for current in range(size, min_size - 1, -1):
        font = korean_font(current, face)
        lines, split = wrap(text, font, width)
        if not split and _fits(lines, font, current, width, height):
            return Fit(current, lines, line_height(current), True, False, current < size)
    font = korean_font(min_size, face)
    lines, split = wrap(text, font, width)
    shrunk = min_size < size
    if _fits(lines, font, min_size, width, height):
        return Fit(min_size, lines, line_height(min_size), True, split, shrunk)
    return Fit(
        min_size, _cut(lines, font, min_size, width, height), line_height(min_size), False,
        split, shrunk,
    )


def _cut(lines: list[str], font, size: int, width: float, height: float) -> list[str]:
    keep = max(1, int(height // line_height(size)))
    kept = lines[:keep]
    last = kept[-1].rstrip()
    while last and text_length(last + "…", font) > width:
        last = last[:-1].rstrip()
    kept[-1] = last + "…"
    return kept


# --- bubbles -------------------------------------------------------------------------------------
@dataclass
class BubbleSpec:
    kind: str  # speech | shout | thought | whisper | narration | caption
    text: str
    x: float  # left, top, width, height: fractions of the panel
    y: float
    w: float
    h: float
    tail_x: float | None = None
    tail_y: float | None = None
    font_size: int = 26  # px at STRIP_WIDTH

    @property
    def has_tail(self) -> bool:
        return lettering(self.kind).tail and self.tail_x is not None and self.tail_y is not None


def text_box(kind: str, width: float, height: float, scale: float = 1.0) -> tuple[float, float]:
    """The room for text inside a bubble of this size: ellipses keep to (a little less than)
    their inscribed rectangle, 1/√2 of each axis; boxes keep a padding."""
    style = lettering(kind)
    if style.room:
        return width * style.room[0], height * style.room[1]
    pad = style.pad * scale
    return max(1.0, width - 2 * pad), max(1.0, height - 2 * pad)


def bubble_fit(spec: BubbleSpec, panel_height: int, width: int = STRIP_WIDTH) -> Fit:
    """How the text of a bubble lays out in a panel `panel_height` px tall at `width`."""
    scale = width / STRIP_WIDTH
    box_w, box_h = text_box(spec.kind, spec.w * width, spec.h * panel_height, scale)
    return fit_text(
        spec.text,
        box_w,
        box_h,
        size=max(1, round(spec.font_size * scale)),
        min_size=max(1, round(MIN_FONT_SIZE * scale)),
        face=lettering(spec.kind).face,
    )


def _ellipse_tail(cx, cy, a, b, tx, ty, spread=0.22):
    """Two points on the bubble's edge either side of the direction of the tail point."""
    angle = math.atan2((ty - cy) / max(b, 1), (tx - cx) / max(a, 1))
    return [
        (cx + a * 0.8 * math.cos(angle + d), cy + b * 0.8 * math.sin(angle + d))
        for d in (-spread, spread)
    ]


def _centre(box):
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2


def _shape_speech(draw, box, tail, lw):
    x0, y0, x1, y1 = box
    cx, cy, a, b = _centre(box)
    polygon = [*_ellipse_tail(cx, cy, a, b, *tail), tail] if tail else None
    # Outline first (a stroke centred on the edge), then the white inside over it: the tail
    # and the ellipse merge into one shape with one outline.
    draw.ellipse((x0 - lw, y0 - lw, x1 + lw, y1 + lw), outline=BLACK, width=2 * lw)
    if polygon:
        draw.line([*polygon, polygon[0]], fill=BLACK, width=2 * lw, joint="curve")
    draw.ellipse(box, fill=WHITE)
    if polygon:
        draw.polygon(polygon, fill=WHITE)


def burst_points(box, spikes: int | None = None) -> list[tuple[float, float]]:
    """A shout's outline: spikes out to the box's ellipse, valleys well inside it."""
    cx, cy, a, b = _centre(box)
    perimeter = 2 * math.pi * math.sqrt((a * a + b * b) / 2)
    count = spikes or min(28, max(10, round(perimeter / max(1.0, 0.45 * min(a, b)))))
    points = []
    for i in range(2 * count):
        t = math.pi * i / count - math.pi / 2
        # Spikes of two lengths, alternating: drawn by hand, not by compass.
        k = 1.0 if i % 2 == 0 else 0.76
        if i % 4 == 2:
            k = 0.93
        points.append((cx + a * k * math.cos(t), cy + b * k * math.sin(t)))
    return points


def _shape_shout(draw, box, tail, lw):
    cx, cy, a, b = _centre(box)
    outline = burst_points(box)
    if tail:
        # The tail is one long spike pointing where it is aimed.
        base = _ellipse_tail(cx, cy, a * 0.9, b * 0.9, *tail, spread=0.16)
        wedge = [base[0], tail, base[1]]
        draw.line([*wedge, wedge[0]], fill=BLACK, width=2 * lw, joint="curve")
    draw.line([*outline, outline[0]], fill=BLACK, width=2 * lw, joint="curve")
    draw.polygon(outline, fill=WHITE)
    if tail:
        draw.polygon(wedge, fill=WHITE)


def _dashes(draw, points, lw, dash, gap, closed=True):
    """Stroke a polyline in dashes of `dash` px with `gap` px between them."""
    on, left = True, dash
    ends = points[1:] + points[:1] if closed else points[1:]
    for (x0, y0), (x1, y1) in zip(points, ends, strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while done < length:
            step = min(left, length - done)
            if on:
                p0 = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
                p1 = (x0 + (x1 - x0) * (done + step) / length,
                      y0 + (y1 - y0) * (done + step) / length)
                draw.line([p0, p1], fill=BLACK, width=lw)
            done += step
            left -= step
            if left <= 0:
                on = not on
                left = dash if on else gap


def _shape_whisper(draw, box, tail, lw):
    cx, cy, a, b = _centre(box)
    draw.ellipse(box, fill=WHITE)
    ring = [(cx + a * math.cos(2 * math.pi * i / 180), cy + b * math.sin(2 * math.pi * i / 180))
            for i in range(180)]
    _dashes(draw, ring, lw, 6 * lw, 4 * lw)
    if tail:
        # The wedge's white covers the ring where the tail leaves it; its sides are dashed too.
        base = _ellipse_tail(cx, cy, a / 0.8, b / 0.8, *tail, spread=0.18)  # on the ring
        draw.polygon([*base, tail], fill=WHITE)
        for end in base:
            _dashes(draw, [end, tail], lw, 6 * lw, 4 * lw, closed=False)


def _shape_thought(draw, box, tail, lw):
    x0, y0, x1, y1 = box
    cx, cy, a, b = _centre(box)
    # A cloud: overlapping puffs centred on a smaller ellipse, reaching out to the box.
    r = min(a, b) * 0.3
    ia, ib = a - r, b - r
    perimeter = 2 * math.pi * math.sqrt((ia * ia + ib * ib) / 2)
    count = min(40, max(8, round(perimeter / (1.4 * r))))
    puffs = [
        (cx + ia * math.cos(t), cy + ib * math.sin(t), r)
        for t in (2 * math.pi * i / count for i in range(count))
    ]
    circles = [*puffs, (cx, cy, (ia, ib))]
    if tail:
        tx, ty = tail
        (ex, ey), _same = _ellipse_tail(cx, cy, a * 1.15, b * 1.15, tx, ty, spread=0)
        for i, k in enumerate((0.25, 0.6, 0.9)):
            circles.append((ex + (tx - ex) * k, ey + (ty - ey) * k, r * (0.55 - 0.15 * i)))

    def each(grow, **kw):
        for x, y, rad in circles:
            rx, ry = rad if isinstance(rad, tuple) else (rad, rad)
            draw.ellipse((x - rx - grow, y - ry - grow, x + rx + grow, y + ry + grow), **kw)

    each(lw, outline=BLACK, width=2 * lw)
    each(0, fill=WHITE)


def _shape_box(draw, box, lw, fill, outline=True, radius=0):
    if outline:
        draw.rounded_rectangle(box, radius=radius, fill=fill, outline=BLACK, width=lw)
    else:
        draw.rounded_rectangle(box, radius=radius, fill=fill)


def draw_bubble(panel: Image.Image, spec: BubbleSpec, width: int | None = None) -> Fit:
    """Draw one text element on an RGBA panel image; returns how its text was laid out."""
    width = width or panel.width
    scale = width / STRIP_WIDTH
    pw, ph = panel.size
    box = (spec.x * pw, spec.y * ph, (spec.x + spec.w) * pw, (spec.y + spec.h) * ph)
    tail = (spec.tail_x * pw, spec.tail_y * ph) if spec.has_tail else None
    lw = max(1, round(3 * scale))
    _draw_shape(panel, spec.kind, box, tail, lw, scale)
    fit = bubble_fit(spec, ph, width)
    _draw_text(panel, spec.kind, box, fit)
    return fit


def _draw_shape(panel, kind, box, tail, lw, scale):
    # The shape is drawn on a transparent layer SUPERSAMPLE times larger, then scaled down
    # and laid over the panel: Pillow draws ellipses without anti-aliasing.
    xs = [box[0], box[2]] + ([tail[0]] if tail else [])
    ys = [box[1], box[3]] + ([tail[1]] if tail else [])
    margin = 4 * lw + 2
    left = max(0, math.floor(min(xs) - margin))
    top = max(0, math.floor(min(ys) - margin))
    right = min(panel.width, math.ceil(max(xs) + margin))
    bottom = min(panel.height, math.ceil(max(ys) + margin))
    if right <= left or bottom <= top:
        return
    k = SUPERSAMPLE
    layer = Image.new("RGBA", ((right - left) * k, (bottom - top) * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)

    def local(x, y):
        return ((x - left) * k, (y - top) * k)

    lbox = (*local(box[0], box[1]), *local(box[2], box[3]))
    ltail = local(*tail) if tail else None
    shapes = {"speech": _shape_speech, "shout": _shape_shout, "thought": _shape_thought,
              "whisper": _shape_whisper}
    if kind in shapes:
        shapes[kind](draw, lbox, ltail, lw * k)
    elif kind == "narration":
        _shape_box(draw, lbox, max(1, round(2 * scale)) * k, NARRATION_FILL)
    else:
        _shape_box(draw, lbox, 0, CAPTION_FILL, outline=False, radius=round(6 * scale * k))
    layer = layer.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    panel.alpha_composite(layer, (left, top))


def _draw_text(panel, kind, box, fit: Fit) -> None:
    if not fit.lines:
        return
    style = lettering(kind)
    font = korean_font(fit.size, style.face)
    ascent, descent = font.getmetrics()
    cx = (box[0] + box[2]) / 2
    top = (box[1] + box[3]) / 2 - fit.height / 2
    pad = (fit.line_height - (ascent + descent)) / 2
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(fit.lines):
        y = top + i * fit.line_height + pad
        x = cx - text_length(line, font) / 2  # centred, emoji included
        for text, is_emoji in runs(line):
            if is_emoji:
                image = _emoji_image(text, fit.size)
                # Centred on the text's middle, like a glyph of the line.
                ey = y + (ascent + descent) / 2 - image.height / 2
                _paste(panel, image, round(x), round(ey))
                x += emoji_font().getlength(text) * _emoji_scale(fit.size)
            else:
                draw.text((x, y), text, font=font, fill=style.text_color, anchor="la")
                x += font.getlength(text)


def _paste(panel: Image.Image, image: Image.Image, x: int, y: int) -> None:
    # alpha_composite wants the layer inside the panel: clip it there first.
    left, top = max(0, -x), max(0, -y)
    right = min(image.width, panel.width - x)
    bottom = min(image.height, panel.height - y)
    if right > left and bottom > top:
        panel.alpha_composite(image.crop((left, top, right, bottom)), (x + left, y + top))


# --- panels and the strip ------------------------------------------------------------------------
@dataclass
class PanelSpec:
    image: Image.Image
    height: int  # px at STRIP_WIDTH
    bubbles: list[BubbleSpec] = field(default_factory=list)
    label: str = ""  # for warnings ("3번째 컷")


def render_panel(spec: PanelSpec, width: int = STRIP_WIDTH) -> tuple[Image.Image, list[str]]:
    """The panel at `width`: its picture cropped to fill (centre), text laid over it."""
    height = max(1, round(spec.height * width / STRIP_WIDTH))
    picture = ImageOps.fit(
        spec.image.convert("RGB"), (width, height), Image.Resampling.LANCZOS
    ).convert("RGBA")
    warnings = []
    for bubble in spec.bubbles:
        fit = draw_bubble(picture, bubble, width)
        if not fit.fits:
            warnings.append(
                _(
                    "%(panel)s: '%(text)s…' 글이 말풍선에 다 들어가지 않아 최소 글자 크기로 "
                    "줄이고 뒷부분을 잘랐습니다. 말풍선을 키우거나 글을 줄여주세요."
                )
                % {"panel": spec.label, "text": normalize(bubble.text).strip()[:12]}
            )
    return picture.convert("RGB"), warnings


def bubble_bands(bubbles: Iterable[BubbleSpec], height: int, top: int = 0) -> list[tuple]:
    """The rows (top, bottom) each bubble covers in a panel `height` px tall placed at `top`,
    tail and outline included: a slice should not cut through them."""
    bands = []
    for b in bubbles:
        ys = [b.y, b.y + b.h] + ([b.tail_y] if b.has_tail else [])
        bands.append((top + math.floor(min(ys) * height) - 6,
                      top + math.ceil(max(ys) * height) + 6))
    return bands


def compose_strip(
    panels: list[Image.Image], width: int = STRIP_WIDTH, gutter: int = GUTTER
) -> tuple[Image.Image, list[tuple[int, int]]]:
    """The panels stacked on white with `gutter` px between them; returns the strip and the
    gutters (top, bottom) where it may be cut."""
    gap = round(gutter * width / STRIP_WIDTH)
    total = sum(p.height for p in panels) + gap * max(0, len(panels) - 1)
    strip = Image.new("RGB", (width, max(1, total)), (255, 255, 255))
    gutters = []
    y = 0
    for i, panel in enumerate(panels):
        strip.paste(panel, (0, y))
        y += panel.height
        if i < len(panels) - 1:
            gutters.append((y, y + gap))
            y += gap
    return strip, gutters


# --- slicing -------------------------------------------------------------------------------------
CUT_WINDOW = 3  # a cut is as busy as the busiest row within 3 px of it


def cut_costs(strip: Image.Image) -> np.ndarray:
    """For every y (0..height), how much detail a cut between rows y-1 and y goes through:
    the mean edge strength of the rows around it (0 on flat colour, high on line art, text
    and noise)."""
    edges = np.asarray(strip.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    rows = edges.mean(axis=1)
    padded = np.pad(rows, (CUT_WINDOW, CUT_WINDOW + 1), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * CUT_WINDOW).max(axis=1)


def slice_ranges(
    total: int,
    gutters: Iterable[tuple[int, int]],
    max_height: int,
    *,
    keep_out: Iterable[tuple[int, int]] | Callable[[int, int], list] = (),
    costs: np.ndarray | None = None,
    start: int = 0,
) -> list[tuple[int, int]]:
    """Where to cut rows `start`..`total` into pieces no taller than `max_height`.

    Gutter first: each cut goes in the middle of the lowest gutter in reach (that leaves a
    piece at least half the maximum); else in the quietest rows of that lower half that cross
    no bubble or face (`keep_out`, by `costs`, see cut_costs); else in a higher gutter (a
    shorter piece rather than a cut through a bubble); else in the quietest rows anyway.
    No cut leaves a last piece shorter than a quarter of the maximum (a sliver of a file).
    `keep_out` may be a function of (low, high) giving the bands there: found only when a cut
    outside a gutter is considered."""
    cuts = sorted((top + bottom) // 2 for top, bottom in gutters)
    if not callable(keep_out):
        bands = list(keep_out)
        keep_out = lambda low, high: bands  # noqa: E731
    ranges = []
    while total - start > max_height:
        limit = start + max_height
        if total - limit < max_height // 4:  # keep the last piece from being a sliver
            limit = max(start + max_height // 2, total - max_height // 4)
        end = _next_cut(start, limit, cuts, keep_out, costs)
        ranges.append((start, end))
        start = end
    ranges.append((start, total))
    return ranges


def _next_cut(start, limit, cuts, keep_out, costs) -> int:
    reach = start + (limit - start) // 2
    if in_reach := [c for c in cuts if reach <= c <= limit]:
        return max(in_reach)
    if (row := _quiet_row(reach, limit, keep_out(reach, limit), costs)) is not None:
        return row
    shortest = start + max(1, (limit - start) // 8)
    if higher := [c for c in cuts if shortest <= c < reach]:
        return max(higher)
    return _quiet_row(reach, limit, [], costs)


def _quiet_row(low: int, high: int, keep_out, costs) -> int | None:
    """The row in low..high crossing no keep-out band with the least detail (ties: the lower
    one, for longer pieces); None when every row crosses a band."""
    rows = np.arange(low, high + 1)
    free = np.ones(len(rows), dtype=bool)
    for top, bottom in keep_out:
        free &= ~((rows > top) & (rows < bottom))
    if not free.any():
        return None
    if costs is None:
        return int(rows[free][-1])
    # Detail first; among equally quiet rows a slight pull toward the bottom.
    score = costs[np.clip(rows, 0, len(costs) - 1)] + (high - rows) / max(1, high - low)
    score[~free] = np.inf
    return int(rows[int(np.argmin(score))])


def slice_strip(strip: Image.Image, ranges: list[tuple[int, int]]) -> list[Image.Image]:
    return [strip.crop((0, top, strip.width, bottom)) for top, bottom in ranges]


# --- files ---------------------------------------------------------------------------------------
EXTENSIONS = {"png": "png", "jpeg": "jpg"}
DEFAULT_QUALITY = 90
PREVIEW_WIDTH = 360  # the editor's whole-strip preview (shown at about 300 CSS px)
PREVIEW_MAX_HEIGHT = 60000  # JPEG's limit is 65,535 px


def encode(image: Image.Image, fmt: str, quality: int = DEFAULT_QUALITY) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, "JPEG", quality=quality, optimize=True)
    else:
        image.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def preview_image(strip: Image.Image) -> tuple[bytes, float]:
    """The whole strip scaled down for the editor (JPEG) and the scale used."""
    scale = min(PREVIEW_WIDTH / strip.width, PREVIEW_MAX_HEIGHT / strip.height)
    size = (max(1, round(strip.width * scale)), max(1, round(strip.height * scale)))
    small = strip.resize(size, Image.Resampling.LANCZOS)
    return encode(small, "jpeg", 82), scale


def zip_images(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    # PNG and JPEG are compressed already: stored, not deflated again.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return buf.getvalue()


def pdf_pages(images: list[Image.Image], dpi: float = 96.0) -> bytes:
    """One page per image (800 px at 96 dpi: pages 600 pt wide)."""
    buf = io.BytesIO()
    first, *rest = [im.convert("RGB") for im in images]
    first.save(buf, "PDF", save_all=True, append_images=rest, resolution=dpi)
    return buf.getvalue()
