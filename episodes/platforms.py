"""Platform presets for exports, and the fitting that meets their limits by itself.

The limits are those the platforms and creators' guides publish (issue 20):

| preset | width | per image | per episode | formats |
|---|---|---|---|---|
| webtoon_canvas (WEBTOON Canvas) | 800 px | <= 1280 px tall, <= 2 MB | <= 20 MB | JPEG/PNG |
| naver (네이버 웹툰 도전·공모) | 690 px | slices <= 1280 px tall | <= 50 MB | JPEG |
| tapas | 940 px | <= 4000 px tall, <= 2 MB | - | JPEG/PNG |
| original | as drawn (800) | as configured (1280) | - | as chosen |

MB are decimal (1,000,000 bytes): a platform that means 2 MiB accepts a 2,000,000-byte file,
one that means 2,000,000 bytes would refuse a 2 MiB one.

`fit` lowers JPEG quality step by step (never below QUALITY_FLOOR) until every file and the
whole episode are within the limits; if a file is still too large at the floor, it cuts that
part of the strip into shorter slices. A limit it cannot meet is a LimitUnmet error naming it,
never a file the platform would refuse. Pure: no database, no storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from PIL import Image

from characters.faces import detect_face
from webtoon.exceptions import DomainError

from . import rendering

MB = 1000 * 1000
QUALITY_START = rendering.DEFAULT_QUALITY
QUALITY_STEP = 5
QUALITY_FLOOR = 70
# The shortest slice made to meet a file-size limit (px at the export width): shorter pieces
# make a reader's phone stitch many seams for little gain.
MIN_SLICE_HEIGHT = 320
SHORTEN_ROUNDS = 6


@dataclass(frozen=True)
class Platform:
    slug: str
    name: object  # a lazy Korean label
    width: int | None  # None: as drawn (rendering.STRIP_WIDTH)
    max_height: int | None  # None: settings.EPISODE_EXPORT_MAX_HEIGHT
    max_image_bytes: int | None = None
    max_total_bytes: int | None = None
    formats: tuple[str, ...] = ("png", "jpeg")


PLATFORMS: dict[str, Platform] = {
    "webtoon_canvas": Platform(
        "webtoon_canvas", gettext_lazy("WEBTOON Canvas"), 800, 1280, 2 * MB, 20 * MB
    ),
    "naver": Platform(
        "naver", gettext_lazy("네이버 웹툰 (도전·공모)"), 690, 1280, None, 50 * MB, ("jpeg",)
    ),
    "tapas": Platform("tapas", gettext_lazy("Tapas"), 940, 4000, 2 * MB, None),
    "original": Platform("original", gettext_lazy("원본 그대로"), None, None),
}
DEFAULT = "original"


class LimitUnmet(DomainError):
    status_code = 422


def platform(slug: str) -> Platform:
    if slug not in PLATFORMS:
        raise LimitUnmet(
            _("플랫폼은 %(names)s 중 하나입니다.") % {"names": ", ".join(PLATFORMS)}
        )
    return PLATFORMS[slug]


def ro(number: int) -> str:
    """The particle 로/으로 after a number read in Korean: 85로 (오), 90으로 (십), 70으로 (십),
    73으로 (삼), 76으로 (육); ㄹ endings (1 일, 7 칠, 8 팔) take 로."""
    return "으로" if number % 10 in (0, 3, 6) else "로"


def human_size(size: int) -> str:
    """1834567 -> "1.8MB", 640000 -> "640KB" (decimal, like the limits)."""
    if size >= MB:
        return f"{size / MB:.1f}MB"
    return f"{max(1, round(size / 1000))}KB"


def describe(p: Platform, max_height: int) -> str:
    """The limits in one Korean line, for the editor."""
    parts = [_("가로 %(w)dpx") % {"w": p.width or rendering.STRIP_WIDTH},
             _("한 장 세로 %(h)dpx 이하") % {"h": max_height}]
    if p.max_image_bytes:
        parts.append(_("한 장 %(size)s 이하") % {"size": human_size(p.max_image_bytes)})
    if p.max_total_bytes:
        parts.append(_("전체 %(size)s 이하") % {"size": human_size(p.max_total_bytes)})
    parts.append("/".join(f.upper() for f in p.formats))
    return " · ".join(parts)


def export_format(p: Platform, fmt: str) -> tuple[str, str]:
    """The format the platform takes (the asked one when it can) and a note if it changed."""
    if fmt in p.formats:
        return fmt, ""
    chosen = p.formats[0]
    note = _("%(name)s는 %(fmt)s만 받아 %(fmt)s로 저장합니다.") % {
        "name": p.name, "fmt": chosen.upper()
    }
    return chosen, note


# cut(top, bottom, max_height) -> [(top, bottom), ...]: rendering.slice_ranges over one part.
Cutter = Callable[[int, int, int], list[tuple[int, int]]]


@dataclass
class Plan:
    """What an export writes: the slices of the strip and their encoded files."""

    format: str
    quality: int | None  # None: PNG
    ranges: list[tuple[int, int]]
    files: list[bytes]
    notes: list[str] = field(default_factory=list)
    shortened: int = 0  # slices that were too large and were cut into shorter ones

    @property
    def sizes(self) -> list[int]:
        return [len(f) for f in self.files]

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def summary(self, p: Platform, width: int) -> str:
        saved = (
            _("품질 %(q)d%(ro)s 저장") % {"q": self.quality, "ro": ro(self.quality)}
            if self.quality else _("PNG로 저장")
        )
        return _("%(name)s · 가로 %(w)dpx · %(saved)s, %(n)d장 · 합계 %(total)s") % {
            "name": p.name, "w": width, "saved": saved, "n": len(self.files),
            "total": human_size(self.total),
        }


def export_strip(
    panels: list[tuple[Image.Image, list[rendering.BubbleSpec]]],
    p: Platform,
    fmt: str,
    max_height: int,
) -> tuple[Image.Image, Plan]:
    """The drawn panels (with the bubbles drawn on them) stacked into the strip, and the plan
    that slices and encodes it within the platform's limits. Slices are cut in gutters first,
    else in the quietest rows that cross no bubble and no face."""
    width = panels[0][0].width
    gap = round(rendering.GUTTER * width / rendering.STRIP_WIDTH)
    tops, top = [], 0
    for picture, _bubbles in panels:
        tops.append(top)
        top += picture.height + gap
    found: dict[int, list] = {}

    def keep_out(low: int, high: int) -> list[tuple[int, int]]:
        # Bubbles and faces of the panels in low..high; faces are looked for only here, when
        # a cut outside a gutter is considered (most cuts are in gutters).
        bands = []
        for i, ((picture, bubbles), top) in enumerate(zip(panels, tops, strict=True)):
            if top < high and top + picture.height > low:
                if i not in found:
                    found[i] = rendering.bubble_bands(bubbles, picture.height, top)
                    found[i] += [(top + a, top + b) for a, b in face_bands(picture)]
                bands += found[i]
        return bands

    strip, gutters = rendering.compose_strip([picture for picture, _ in panels], width)
    costs = rendering.cut_costs(strip)

    def cut(start: int, end: int, height: int) -> list[tuple[int, int]]:
        return rendering.slice_ranges(end, gutters, height, keep_out=keep_out, costs=costs,
                                      start=start)

    return strip, fit(strip, p, fmt, max_height, cut)


FACE_DETECT_WIDTH = 480  # faces that matter to a cut are large; a smaller copy is 3x faster


def face_bands(picture: Image.Image) -> list[tuple[int, int]]:
    """The rows of the picture's largest frontal face, if any."""
    scale = min(1.0, FACE_DETECT_WIDTH / picture.width)
    small = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                           Image.Resampling.BILINEAR) if scale < 1 else picture
    face = detect_face(small)
    if not face:
        return []
    return [(math.floor(face["y"] / scale), math.ceil((face["y"] + face["h"]) / scale))]


def fit(strip: Image.Image, p: Platform, fmt: str, max_height: int, cut: Cutter) -> Plan:
    """Slice and encode the strip within the platform's limits (see the module docstring)."""
    ranges = cut(0, strip.height, max_height)
    qualities = range(QUALITY_START, QUALITY_FLOOR - 1, -QUALITY_STEP) if fmt == "jpeg" else [None]
    first: list[bytes] = []
    for quality in qualities:
        files = _encode(strip, ranges, fmt, quality)
        first = first or files
        if not _too_big(files, p) and not _over_total(files, p):
            break
    plan = Plan(fmt, quality, ranges, files)
    if quality and quality < QUALITY_START:
        if _too_big(first, p):
            limit = _("한 장 %(size)s") % {"size": human_size(p.max_image_bytes)}
        else:
            limit = _("전체 %(size)s") % {"size": human_size(p.max_total_bytes)}
        plan.notes.append(
            _("%(limit)s 제한에 맞추려고 JPEG 품질을 %(start)d에서 %(q)d%(ro)s 낮췄습니다.")
            % {"limit": limit, "start": QUALITY_START, "q": quality, "ro": ro(quality)}
        )
    if _too_big(plan.files, p):
        _shorten(strip, p, plan, cut)
    if _over_total(plan.files, p):
        if plan.quality:
            saved = _("JPEG 품질 %(q)d%(ro)s도") % {"q": QUALITY_FLOOR, "ro": ro(QUALITY_FLOOR)}
            advice = _("컷 수를 줄이거나 두 화로 나눠 올려주세요.")
        else:
            saved = _("PNG로는")
            advice = _("JPEG로 내보내면 품질을 낮춰 맞춥니다.")
        raise LimitUnmet(
            _(
                "%(name)s의 에피소드 전체 용량 제한(%(limit)s)을 맞출 수 없습니다: %(saved)s "
                "%(total)s입니다. %(advice)s"
            )
            % {"name": p.name, "limit": human_size(p.max_total_bytes), "saved": saved,
               "total": human_size(plan.total), "advice": advice}
        )
    return plan


def _encode(strip, ranges, fmt, quality) -> list[bytes]:
    return [rendering.encode(piece, fmt, quality or rendering.DEFAULT_QUALITY)
            for piece in rendering.slice_strip(strip, ranges)]


def _too_big(files: list[bytes], p: Platform) -> bool:
    return bool(p.max_image_bytes) and any(len(f) > p.max_image_bytes for f in files)


def _over_total(files: list[bytes], p: Platform) -> bool:
    return bool(p.max_total_bytes) and sum(len(f) for f in files) > p.max_total_bytes


def _shorten(strip: Image.Image, p: Platform, plan: Plan, cut: Cutter) -> None:
    """Cut each slice still over the per-image limit into shorter ones, a few rounds."""
    limit = p.max_image_bytes
    before = len(plan.files)
    for _round in range(SHORTEN_ROUNDS):
        ranges, files = [], []
        for (top, bottom), data in zip(plan.ranges, plan.files, strict=True):
            if len(data) <= limit:
                ranges.append((top, bottom))
                files.append(data)
                continue
            height = bottom - top
            if height <= MIN_SLICE_HEIGHT:
                raise LimitUnmet(_too_heavy(p, plan, len(data)))
            # Bytes grow about with the rows: equal pieces a little under the limit each.
            count = math.ceil(len(data) / (limit * 0.9))
            target = max(MIN_SLICE_HEIGHT, math.ceil(height / count))
            pieces = cut(top, bottom, target)
            ranges += pieces
            files += _encode(strip, pieces, plan.format, plan.quality)
            plan.shortened += 1
        plan.ranges, plan.files = ranges, files
        if not _too_big(files, p):
            break
    else:
        raise LimitUnmet(_too_heavy(p, plan, max(plan.sizes)))
    plan.notes.append(
        _(
            "한 장 %(limit)s 제한에 맞추려고 더 짧게 나눴습니다: %(before)d장 → %(after)d장 "
            "(가장 짧은 장 %(h)dpx)."
        )
        % {"limit": human_size(limit), "before": before, "after": len(plan.files),
           "h": min(b - t for t, b in plan.ranges)}
    )


def _too_heavy(p: Platform, plan: Plan, size: int) -> str:
    if plan.format == "png":
        return _(
            "%(name)s의 한 장 용량 제한(%(limit)s)을 PNG로는 맞출 수 없습니다: %(h)dpx 높이로 "
            "잘라도 %(size)s입니다. JPEG로 내보내주세요."
        ) % {"name": p.name, "limit": human_size(p.max_image_bytes), "h": MIN_SLICE_HEIGHT,
             "size": human_size(size)}
    return _(
        "%(name)s의 한 장 용량 제한(%(limit)s)을 맞출 수 없습니다: JPEG 품질 %(q)d, "
        "%(h)dpx 높이로 잘라도 %(size)s입니다. 그림이 지나치게 세밀합니다(노이즈 등). "
        "그림을 바꾸거나 원본 그대로 내보내주세요."
    ) % {"name": p.name, "limit": human_size(p.max_image_bytes), "q": plan.quality,
         "h": MIN_SLICE_HEIGHT, "size": human_size(size)}
