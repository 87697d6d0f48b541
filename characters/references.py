"""A character's reference images for reference-mode scenes (issue 17).

A multi-reference editing model (FAL_ENDPOINT_REFERENCE, fal-ai/flux-2/edit) keeps a person
recognisable from a few pictures, with no training. The pictures are chosen once and kept
with the character (`Character.reference_images`), best first:

1. the curated cuts (selected, with an image, not failed by the quality check), ranked by
   identity against the photo (same < unsure < not measured < different, then distance),
   one of each angle first (front, 3/4, profile), then the best of the rest; so the first
   two (a two-character scene's share of a 4-image limit) are a front and a 3/4 view;
2. no curated cuts (a character restored from an old backup): the reference sheet's images
   (the training ZIP), copied into our storage;
3. neither: the photo itself.

Nothing at all is a 409 with a Korean reason. Also: how a trained character's LoRA scenes
and reference scenes compare on identity (counts and medians), for its page.
"""

from __future__ import annotations

import statistics

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict
from webtoon.media import user_file_name

from . import likeness
from .models import Character
from .reference_sheet import sheet_items

FRONT, THREE_QUARTER, PROFILE, OTHER = "front", "three_quarter", "profile", "other"
ANGLE_ORDER = (FRONT, THREE_QUARTER, PROFILE)
ANGLE_LABELS = {FRONT: "정면", THREE_QUARTER: "3/4", PROFILE: "측면", OTHER: "기타"}
CUT, SHEET, PHOTO = "cut", "sheet", "photo"

NOTHING_TO_REFER = (
    "'%(name)s'에는 참조할 이미지가 없습니다 (선별한 컷도, 레퍼런스 시트도, 사진도 없음). "
    "사진이 있는 백업을 복원하거나 새 캐릭터를 만들어주세요."
)
_VERDICT_RANK = {likeness.SAME: 0, likeness.UNSURE: 1, None: 2, likeness.NO_FACE: 2,
                 likeness.DIFFERENT: 3}


def angle_of(pose_prompt: str) -> str:
    text = (pose_prompt or "").lower()
    if "profile" in text:
        return PROFILE
    if "3/4" in text or "three-quarter" in text or "three quarter" in text:
        return THREE_QUARTER
    if "front view" in text or "looking at camera" in text:
        return FRONT
    return OTHER


def max_images() -> int:
    return max(1, int(settings.FAL_REFERENCE_MAX_IMAGES))


def per_character(count: int) -> int:
    """How many references each of `count` characters gets within the endpoint's limit."""
    return max(1, max_images() // max(1, count))


# --- choosing -------------------------------------------------------------------------------
def references_for(character: Character, count: int | None = None) -> list[dict]:
    """The character's kept references (chosen now if never chosen, or if a kept file is
    gone), the first `count` of them; Conflict (409) when there is nothing to refer to."""
    kept = character.reference_images or []
    if not kept or not all(default_storage.exists(r["image"]) for r in kept):
        kept = choose(character)
        Character.objects.filter(pk=character.pk).update(reference_images=kept)
        character.reference_images = kept
    if not kept:
        raise Conflict(_(NOTHING_TO_REFER) % {"name": character.name})
    return kept[: count or max_images()]


def choose(character: Character) -> list[dict]:
    limit = max_images()
    return _from_cuts(character, limit) or _from_sheet(character, limit) or _from_photo(
        character
    )


def _distance(cut) -> float | None:
    return (cut.identity or {}).get("distance") if cut.identity else cut.similarity


def _rank(cut) -> tuple:
    distance = _distance(cut)
    verdict = (cut.identity or {}).get("verdict") if cut.identity else (
        likeness.verdict_of(distance) if distance is not None else None
    )
    return (_VERDICT_RANK.get(verdict, 2), 1.0 if distance is None else distance, cut.number)


def _from_cuts(character: Character, limit: int) -> list[dict]:
    if not character.session_id:
        return []
    cuts = [
        cut
        for cut in character.session.cuts.filter(selected=True, error="").exclude(image="")
        if cut.quality_ok is not False
    ]
    cuts.sort(key=_rank)
    chosen = []
    for angle in ANGLE_ORDER:  # one of each angle first, the best of it
        best = next((c for c in cuts if angle_of(c.pose_prompt) == angle), None)
        if best is not None:
            chosen.append(best)
    chosen += [c for c in cuts if c not in chosen]
    return [
        {
            "image": cut.image.name,
            "source": CUT,
            "number": cut.number,
            "label": cut.label_ko,
            "angle": angle_of(cut.pose_prompt),
            "distance": _distance(cut),
        }
        for cut in chosen[:limit]
    ]


def _from_sheet(character: Character, limit: int) -> list[dict]:
    out = []
    for item in sheet_items(character)[:limit]:
        name = default_storage.save(
            user_file_name(character.owner_id, "references", "jpg"), ContentFile(item.data)
        )
        out.append({"image": name, "source": SHEET, "number": item.number, "label": item.label,
                    "angle": OTHER, "distance": None})
    return out


def _from_photo(character: Character) -> list[dict]:
    photo = character.photo
    if photo is None or not photo.image or not default_storage.exists(photo.image.name):
        return []
    return [{"image": photo.image.name, "source": PHOTO, "number": None, "label": _("원본 사진"),
             "angle": FRONT, "distance": 0.0}]


# --- LoRA vs reference on identity ----------------------------------------------------------
def method_comparison(character: Character) -> dict:
    """{"lora": {...}, "reference": {...}} over the character's finished scenes: how many,
    how many measured, how many judged the same person, the median distance (None: none)."""
    from scenes.models import SceneCharacter  # lazy: scenes builds on characters

    rows = SceneCharacter.objects.filter(character=character).exclude(scene__image="")
    groups: dict[str, list] = {"lora": [], "reference": []}
    for inputs, identity in rows.values_list("scene__inputs", "identity"):
        method = (inputs or {}).get("method") or "lora"
        groups.setdefault(method, []).append(identity)
    out = {}
    for method in ("lora", "reference"):
        values = groups.get(method, [])
        distances = [v["distance"] for v in values if v and v.get("distance") is not None]
        same = sum(1 for v in values if v and v.get("verdict") == likeness.SAME)
        out[method] = {
            "count": len(values),
            "measured": len(distances),
            "same": same,
            "median_distance": round(statistics.median(distances), 3) if distances else None,
        }
    return out
