"""Reads shared by the pages, the API and the step modules; every lookup is scoped to its owner
(anyone else's row, or none, is a 404)."""

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from .enums import CharacterStatus
from .models import Character, CreationSession, Photo, Sample


def photo_for(owner, public_id) -> Photo:
    return get_object_or_404(Photo, public_id=public_id, owner=owner)


def session_for(owner, session_id) -> CreationSession:
    return get_object_or_404(
        CreationSession.objects.select_related("photo"), public_id=session_id, owner=owner
    )


def character_for(owner, character_id) -> Character:
    """One of the owner's characters (deleted ones are gone for everybody but staff)."""
    return get_object_or_404(
        Character.objects.exclude(status=CharacterStatus.DELETED),
        public_id=character_id,
        owner=owner,
    )


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
