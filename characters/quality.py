"""The quality check every finished cut goes through before the user curates it.

A failed check only unchecks the cut and tells the user why; the user has the last word.
All checks are cheap image statistics on small copies, plus one face descriptor (identity).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image

from . import identity
from .enums import StyleId
from .prompts import REALISTIC_FACE_STYLES

# Reasons, short and distinct: the curation screen shows them under the cut. Marked with
# gettext_noop for makemessages and translated when a report is made, because the report is
# stored in a JSONField and must hold plain strings, not lazy proxies.
NO_FACE = gettext_noop("얼굴을 찾지 못했습니다")
DIFFERENT_PERSON = gettext_noop("원본 사진과 다른 사람처럼 보입니다")
DARK_BACKGROUND = gettext_noop("배경이 너무 어둡습니다")
BUSY_BACKGROUND = gettext_noop("배경이 너무 복잡합니다")
NEAR_BLANK = gettext_noop("거의 빈 이미지입니다")
NEAR_DUPLICATE = gettext_noop("거의 같은 이미지가 이미 있습니다")

# Statistics run on a copy this size: enough for a 6% border strip of 15 px, and a 1024 px
# cut shrinks to it in a few milliseconds.
ANALYSIS_SIDE = 256
BORDER_FRACTION = 0.06
# The side strips only count down to here: below it, upper-body cuts have shoulders and arms
# touching the frame, and the bottom strip is the body itself, not background.
SIDE_STRIP_DEPTH = 0.6
# A pixel darker than this (0-255 luminance) counts as dark; a step to the next pixel larger
# than this counts as an edge. Measured at ANALYSIS_SIDE: sky, studio backdrops and smooth
# gradients stay under it, foliage, gravel, text and furniture do not.
DARK_LUMINANCE = 80
EDGE_STEP = 24
# Styles asked for (or drawn with) a plain background: fail when half of it is dark, or more
# than a seventh of it is edges. Shares measured in the strip: a plain light backdrop 0 / 0;
# skimage's gravel and grass textures 0.35+ edges, its brick wall 0.21; the Hubble deep field
# and its rocket-launch photo 0.99+ dark; Grace Hopper's grey studio backdrop 0.38 / 0.11.
MAX_DARK_SHARE = 0.5
MAX_EDGE_SHARE = 0.15
# `original` keeps the photo's own background (Kontext only changes the pose) and `custom`
# follows the user's prompt, so an ordinary indoor or outdoor background is expected there:
# only a clearly dark or cluttered one fails. A garage scene (skimage's motorcycle: 0.56
# dark, 0.24 edges) or the astronaut's flag and shuttle model pass; a near-black backdrop or
# a texture all around (gravel, grass, a wall of clutter) does not.
LENIENT_STYLES = {StyleId.ORIGINAL, StyleId.CUSTOM}
LENIENT_MAX_DARK_SHARE = 0.8
LENIENT_MAX_EDGE_SHARE = 0.25
# A flat image (a failed generation, the black image a safety filter returns) has a
# luminance standard deviation below BLANK_MAX_STD *and* no pixels far off the rest. The
# second test spares sparse line art: a 1 px outline on white has a std of ~3 but a spread
# (0.1th to 99.9th percentile) of ~45; JPEG noise on flat grey stays under ~10.
BLANK_MAX_STD = 6.0
BLANK_MAX_SPREAD = 32.0
# Cuts whose 256-bit dHashes differ in this many bits or fewer look the same at a glance:
# re-encoding or resizing flips 0-2 bits, a 2% crop already 16+, and two different
# framings of the same person (measured on 72 offline renders) never came closer than 26.
HASH_SIDE = 16
DUPLICATE_MAX_BITS = 12
# Scene cuts ("in office setting", "at a cafe table") have a busy background by design.
SCENE_CATEGORY = "scene"


@dataclass(frozen=True)
class QualityReport:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why it failed; empty when ok
    distance: float | None = None  # to the uploaded photo; None if either side has no face
    face_found: bool = False
    fingerprint: str = ""  # 256-bit dHash as 64 hex digits
    embedding: list[float] | None = None  # the cut's face descriptor (None: no face)


def fingerprint(image: Image.Image) -> str:
    """A 256-bit difference hash: is each pixel of a 17×16 thumbnail brighter than its left one?

    16×16 rather than the classic 8×8: on 8×8 two genuinely different framings of the same
    person came within 4 bits of each other, at 16×16 they stay 26+ apart while a re-encoded
    or resized copy moves at most a few bits."""
    small = image.convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    value = int("".join("1" if bit else "0" for bit in bits), 2)
    return f"{value:0{HASH_SIDE * HASH_SIDE // 4}x}"


def hamming(a: str, b: str) -> int:
    """How many bits two fingerprints differ in."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def assess_cut(
    image: Image.Image,
    *,
    style_id: str,
    reference_embedding: list[float] | None,
    other_fingerprints: Iterable[str] = (),
    category: str = "",
) -> QualityReport:
    """Check one finished cut; `reference_embedding` is the uploaded photo's (None or [] = no
    face there), `other_fingerprints` those of the session's other cuts."""
    hash_hex = fingerprint(image)
    gray = _analysis_gray(image)
    if _is_near_blank(gray):
        # Nothing else is worth saying about an empty image (no face, "clean" background...).
        return QualityReport(ok=False, reasons=[_(NEAR_BLANK)], fingerprint=hash_hex)

    reasons: list[str] = []
    embedding = identity.face_embedding(image)
    distance = None
    if embedding is not None and reference_embedding:
        distance = identity.face_distance(embedding, reference_embedding)
    # Drawn styles rarely have a face dlib can find or measure: their distance is shown to
    # the user but never judged.
    if style_id in REALISTIC_FACE_STYLES:
        if embedding is None:
            reasons.append(_(NO_FACE))
        elif distance is not None and distance > identity.SAME_PERSON_MAX_DISTANCE:
            reasons.append(_(DIFFERENT_PERSON))

    if category != SCENE_CATEGORY:
        problem = _background_problem(gray, lenient=style_id in LENIENT_STYLES)
        if problem:
            reasons.append(_(problem))

    if _is_near_duplicate(hash_hex, other_fingerprints):
        reasons.append(_(NEAR_DUPLICATE))

    return QualityReport(
        ok=not reasons,
        reasons=reasons,
        distance=distance,
        face_found=embedding is not None,
        fingerprint=hash_hex,
        embedding=embedding,
    )


def _analysis_gray(image: Image.Image) -> np.ndarray:
    """Luminance as float32, longest side ANALYSIS_SIDE (aspect kept)."""
    gray = image.convert("L")
    scale = ANALYSIS_SIDE / max(gray.size)
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    return np.asarray(gray.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _is_near_blank(gray: np.ndarray) -> bool:
    if float(gray.std()) >= BLANK_MAX_STD:
        return False
    low, high = np.percentile(gray, [0.1, 99.9])
    return float(high - low) < BLANK_MAX_SPREAD


def _background_mask(shape: tuple[int, int]) -> np.ndarray:
    """The frame around the head: the top strip and the upper part of the side strips."""
    height, width = shape
    strip = max(1, round(min(height, width) * BORDER_FRACTION))
    depth = max(strip, round(height * SIDE_STRIP_DEPTH))
    mask = np.zeros(shape, dtype=bool)
    mask[:strip, :] = True
    mask[:depth, :strip] = True
    mask[:depth, -strip:] = True
    return mask


def _background_problem(gray: np.ndarray, *, lenient: bool) -> str | None:
    """DARK_BACKGROUND, BUSY_BACKGROUND or None, from the strip around the subject."""
    mask = _background_mask(gray.shape)
    # The larger of the horizontal and vertical step to the next pixel; the last row and
    # column have no next pixel and count as flat.
    step = np.zeros_like(gray)
    step[:, :-1] = np.abs(np.diff(gray, axis=1))
    step[:-1, :] = np.maximum(step[:-1, :], np.abs(np.diff(gray, axis=0)))
    dark_share = float((gray[mask] < DARK_LUMINANCE).mean())
    edge_share = float((step[mask] > EDGE_STEP).mean())
    max_dark = LENIENT_MAX_DARK_SHARE if lenient else MAX_DARK_SHARE
    max_edges = LENIENT_MAX_EDGE_SHARE if lenient else MAX_EDGE_SHARE
    if dark_share > max_dark:
        return DARK_BACKGROUND
    if edge_share > max_edges:
        return BUSY_BACKGROUND
    return None


def _is_near_duplicate(hash_hex: str, others: Iterable[str]) -> bool:
    # Cuts not yet assessed have an empty fingerprint; they cannot match anything.
    return any(other and hamming(hash_hex, other) <= DUPLICATE_MAX_BITS for other in others)
