"""Reads shared by the pages and the API."""

from django.db.models import Prefetch, QuerySet

from .enums import CharacterStatus
from .models import Character, Sample


def characters_for(owner) -> QuerySet[Character]:
    """The owner's characters (not deleted), newest first, with what a card shows."""
    return (
        Character.objects.filter(owner=owner)
        .exclude(status=CharacterStatus.DELETED)
        .select_related("training_job", "current_version__sweep_job", "photo")
        .prefetch_related(
            Prefetch("samples", queryset=Sample.objects.order_by("number")),
            "current_version__sweep_images",  # recommended scale and sweep (issue 16)
        )
        .order_by("-created_at")
    )
