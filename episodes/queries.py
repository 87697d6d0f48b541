"""Reads shared by the pages and the API; every one is scoped to its owner (others: 404)."""

from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404

from .models import Bubble, Episode, Export, Panel, StylePreset


def presets():
    return StylePreset.objects.filter(is_active=True)


def episodes_for(owner):
    return (
        Episode.objects.filter(owner=owner)
        .select_related("preset")
        .annotate(panel_count=Count("panels"))
        .order_by("-updated_at", "-id")
    )


def episode_for(owner, episode_id) -> Episode:
    return get_object_or_404(Episode.objects.select_related("preset"), public_id=episode_id,
                             owner=owner)


def panels_of(episode: Episode):
    return (
        Panel.objects.filter(episode=episode)
        .select_related("scene", "scene__job")
        .prefetch_related(
            Prefetch("bubbles", queryset=Bubble.objects.order_by("position", "id")),
            "scene__cast__character",  # identity per character (issue 16)
        )
        .order_by("position", "id")
    )


def panel_for(owner, panel_id) -> Panel:
    return get_object_or_404(
        Panel.objects.select_related("episode", "scene", "scene__job"),
        public_id=panel_id,
        episode__owner=owner,
    )


def bubble_for(owner, bubble_id) -> Bubble:
    return get_object_or_404(
        Bubble.objects.select_related("panel", "panel__episode", "panel__scene"),
        public_id=bubble_id,
        panel__episode__owner=owner,
    )


def export_for(owner, export_id) -> Export:
    return get_object_or_404(
        Export.objects.select_related("episode"), public_id=export_id, owner=owner
    )


def latest_export(episode: Episode) -> Export | None:
    return episode.exports.filter(preview=False).order_by("-created_at", "-id").first()


def latest_preview(episode: Episode) -> Export | None:
    return episode.exports.filter(preview=True).order_by("-created_at", "-id").first()
