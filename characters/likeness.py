"""Identity on every image that should show a character (issue 16).

One result shape everywhere (cuts, test images, test-generate results, scale-sweep images,
scenes per character, episode panels through their scenes):

    {"distance": 0.31, "verdict": "same" | "unsure" | "different" | "no_face", "near_copy": False}

measured against the character's *anchor*: the face descriptor of its source photo. None
instead of a dict means "not measurable": the anchor photo has no face dlib can find.

Thresholds (dlib descriptor distance), measured with bench/measure_identity.py on
tests/testdata (docs/PERFORMANCE.md, "Identity thresholds"):
- unmirrored copies of one photo (JPEG q95/q60, 90 % crop, 6° rotation, +30 % brightness or
  contrast, greyscale, the fakes' 4 unmirrored reframings) measured 0.046-0.176 for
  astronaut.png and grace_hopper.jpg; mirrored copies 0.152-0.210; a half-size astronaut
  (its face ~80 px) 0.226;
- the two different people (astronaut vs Grace Hopper) measured 0.694 (0.704 mirrored);
- dlib's own decision threshold is 0.6 (99.38 % on LFW), which the quality check and the
  consistency score already use for "same person".
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext as _
from PIL import Image

from . import identity
from .prompts import REALISTIC_FACE_STYLES

SAME, UNSURE, DIFFERENT, NO_FACE = "same", "unsure", "different", "no_face"
VERDICTS = (SAME, UNSURE, DIFFERENT, NO_FACE)

SAME_MAX_DISTANCE = identity.SAME_PERSON_MAX_DISTANCE  # 0.6, dlib's threshold
# Between dlib's threshold and the different people we measured (0.694): dlib's errors on
# LFW sit around its threshold, so a distance just above it is "unsure", not "different".
UNSURE_MAX_DISTANCE = 0.65
# Every unmirrored copy of a photo measured <= 0.176, and a genuinely new photo of the same
# person is usually 0.2-0.4 apart (dlib's published figures): 0.18 flags the copies. Mirrored
# copies straddle it (0.152-0.210): a mirror is half a new pose, flagged or not.
NEAR_COPY_MAX_DISTANCE = 0.18


def verdict_of(distance: float | None) -> str:
    if distance is None:
        return NO_FACE
    if distance <= SAME_MAX_DISTANCE:
        return SAME
    if distance <= UNSURE_MAX_DISTANCE:
        return UNSURE
    return DIFFERENT


def result(distance: float | None) -> dict:
    """The stored shape for a measured image (distance None: no face in the image)."""
    return {
        "distance": None if distance is None else round(float(distance), 3),
        "verdict": verdict_of(distance),
        "near_copy": distance is not None and distance <= NEAR_COPY_MAX_DISTANCE,
    }


def compare(embedding: Sequence[float] | None, anchor: Sequence[float] | None) -> dict | None:
    """An image's face descriptor (None: no face) against the anchor (None/[]: none)."""
    if not anchor:
        return None
    if embedding is None:
        return result(None)
    return result(identity.face_distance(embedding, anchor))


def judge(image: Image.Image, anchor: Sequence[float] | None) -> dict | None:
    """The largest face of `image` against the anchor; None when the anchor has no face."""
    if not anchor:
        return None
    return compare(identity.face_embedding(image.convert("RGB")), anchor)


def judge_file(field_file, anchor: Sequence[float] | None) -> dict | None:
    if not anchor or not field_file:
        return None
    with field_file.open("rb") as fh, Image.open(fh) as im:
        return judge(im, anchor)


def is_drawn(style_id: str) -> bool:
    return style_id not in REALISTIC_FACE_STYLES


# --- words for pages ----------------------------------------------------------------------------
def anchor_missing(character) -> bool:
    """The photo was looked at and has no face: nothing can ever be measured against it."""
    photo = character.photo if character is not None else None
    return photo is None or photo.face_embedding == []


def words(value: dict | None, *, drawn: bool = False, no_anchor: bool = False) -> str:
    """What a page says about an identity result ("닮음 · 높음"). None: not measured
    (`no_anchor`: because the photo has no face)."""
    if value is None:
        if no_anchor:
            return _("닮음 측정 불가 (원본 사진에서 얼굴을 찾지 못함)")
        return _("닮음 측정 안 됨")
    verdict = value.get("verdict")
    if verdict == NO_FACE:
        if drawn:
            return _("그림체라 얼굴을 찾지 못해 닮음을 재지 않았습니다")
        return _("얼굴을 찾지 못함")
    text = {
        SAME: _("닮음 · 높음"),
        UNSURE: _("닮음 · 애매함"),
        DIFFERENT: _("닮지 않음 · 낮음"),
    }.get(verdict, "")
    if value.get("near_copy"):
        text += " · " + _("사진과 거의 같음")
    return text


def display(value: dict | None, *, drawn: bool = False, no_anchor: bool = False) -> dict:
    """The result plus its words and a CSS tone, for templates."""
    base = dict(value) if value else {"distance": None, "verdict": None, "near_copy": False}
    tone = {SAME: "ok", UNSURE: "warn", DIFFERENT: "bad"}.get(base.get("verdict"), "muted")
    return {**base, "words": words(value, drawn=drawn, no_anchor=no_anchor), "tone": tone}
