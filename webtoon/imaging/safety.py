"""fal's safety checker. A FLUX output says per image whether it was flagged
(`has_nsfw_concepts: [true]`, FAL.md §5); a flagged image comes back blacked out. It is not an
error: fal ran (and charged) the request, but the picture is of no use to anyone."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

SAFETY_FILTER_MESSAGE = _("안전 필터에 걸렸습니다")


def flagged_unsafe(result: Any, index: int = 0) -> bool:
    """True when the output's image `index` (the one we keep: images[0]) was flagged."""
    flags = result.get("has_nsfw_concepts") if isinstance(result, dict) else None
    return isinstance(flags, list) and len(flags) > index and flags[index] is True
