"""Episodes, panels, bubbles and exports as plain dicts: one shape for the API and pages."""

from __future__ import annotations

from django.urls import reverse

from scenes.identity import cast_identity
from webtoon.media import media_url

from . import platforms, services
from .models import Bubble, Episode, Export, Panel, StylePreset


def preset_dict(preset: StylePreset | None) -> dict | None:
    if preset is None:
        return None
    return {"id": preset.slug, "name": preset.name, "keywords": preset.keywords,
            "description": preset.description}


def bubble_dict(bubble: Bubble, panel: Panel | None = None) -> dict:
    fit = services.bubble_fit(bubble, panel)
    note, warning = services.fit_note(fit, bubble.font_size)
    return {
        "bubble_id": str(bubble.public_id),
        "kind": bubble.kind,
        "kind_label": bubble.get_kind_display(),
        "text": bubble.text,
        "x": bubble.x,
        "y": bubble.y,
        "w": bubble.w,
        "h": bubble.h,
        "tail_x": bubble.tail_x if bubble.has_tail else None,
        "tail_y": bubble.tail_y if bubble.has_tail else None,
        "font_size": bubble.font_size,
        "fit": {
            "font_size": fit.size,
            "lines": fit.lines,
            "fits": fit.fits,
            "note": note,
            "warning": warning,
        },
    }


def panel_dict(panel: Panel, number: int | None = None) -> dict:
    scene = panel.scene if panel.scene_id else None
    status = services.panel_status(panel)
    return {
        "panel_id": str(panel.public_id),
        "number": number or panel.position,
        "position": panel.position,
        "status": status,
        "source": "upload" if panel.image else "scene",
        "scene_id": str(scene.public_id) if scene else None,
        "prompt": scene.prompt if scene else "",
        "error": scene.error if scene and status == "failed" else "",
        "image_url": media_url(panel.image_name),
        "height": panel.height,
        "display_height": services.panel_height(panel),
        "bubbles": [bubble_dict(b, panel) for b in panel.bubbles.all()],
        # issue 16: each character of the panel's scene against its photo (scenes.identity)
        "identity": cast_identity(scene) if scene and not panel.image else [],
    }


def episode_dict(episode: Episode, panels: list[Panel] | None = None) -> dict:
    data = {
        "episode_id": str(episode.public_id),
        "title": episode.title,
        "preset": preset_dict(episode.preset),
        "created_at": episode.created_at,
        "updated_at": episode.updated_at,
    }
    if panels is not None:
        data["panels"] = [panel_dict(p, i) for i, p in enumerate(panels, 1)]
        data["panel_count"] = len(panels)
    else:
        count = getattr(episode, "panel_count", None)  # annotated by episodes_for
        data["panel_count"] = episode.panels.count() if count is None else count
    return data


def platform_choices() -> list[dict]:
    """The export presets for the editor's select, each with its limits in one line."""
    return [
        {"id": p.slug, "name": str(p.name),
         "limits": platforms.describe(p, p.max_height or services.max_slice_height()),
         "formats": list(p.formats)}
        for p in platforms.PLATFORMS.values()
    ]


def _image_dict(export: Export, number: int, image: dict) -> dict:
    size = image.get("size")
    return {
        "number": number,
        "url": media_url(image.get("name")),
        "download_url": reverse("episodes:export_image", args=[export.public_id, number])
        if image.get("name") else None,
        "filename": services.download_name(export, "image", number),
        "width": image["width"],
        "height": image["height"],
        "top": image.get("top"),
        "size": size,
        "size_label": platforms.human_size(size) if size else "",
    }


def export_dict(export: Export) -> dict:
    images = [_image_dict(export, i, image) for i, image in enumerate(export.images, 1)]
    total = export.total_height or 0
    return {
        "export_id": str(export.public_id),
        "episode_id": str(export.episode.public_id),
        "state": export.state,
        "state_label": export.get_state_display(),
        "finished": export.is_finished,
        "preview": export.preview,
        "preset": export.preset,
        "preset_label": export.get_preset_display(),
        "format": export.format,
        "quality": export.quality,
        "summary": export.summary,
        "width": export.width,
        "max_height": export.max_height,
        "total_height": export.total_height,
        "images": images,
        "total_size": sum(i["size"] or 0 for i in images),
        "total_size_label": platforms.human_size(sum(i["size"] or 0 for i in images)),
        # Where each slice starts, as a fraction of the strip (the preview marks the cuts).
        "cuts": [i["top"] / total for i in images[1:] if total and i["top"] is not None],
        "preview_url": media_url(export.preview_file.name) if export.preview_file else None,
        "zip_url": media_url(export.zip_file.name) if export.zip_file else None,
        "pdf_url": media_url(export.pdf_file.name) if export.pdf_file else None,
        "zip_filename": services.download_name(export, "zip"),
        "pdf_filename": services.download_name(export, "pdf"),
        "warnings": export.warnings,
        "error": export.error,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
    }
