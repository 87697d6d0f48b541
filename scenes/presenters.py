"""The shape of a scene, for the API (SceneOut) and the pages alike."""

from django.utils.translation import gettext as _

from webtoon.jobs.presenters import wait_message
from webtoon.media import media_url

from . import reference, separation
from .identity import cast_identity
from .models import Scene


def scene_dict(scene: Scene) -> dict:
    job = scene.job
    identities = {row["role"]: row for row in cast_identity(scene)}
    return {
        "scene_id": str(scene.public_id),
        "task_id": str(job.public_id) if job else None,
        "mode": scene.mode,
        "status": "completed" if scene.image else ("failed" if scene.error else "generating"),
        "prompt": scene.prompt,
        "image_size": scene.image_size,
        "num_inference_steps": scene.steps,
        "seed": scene.seed,
        "image_url": media_url(scene.image.name) if scene.image else None,
        "error": scene.error,
        "wait_message": wait_message(job) if job and not scene.image else "",
        "warnings": scene.warnings,
        "characters": [
            {
                "role": c.role,
                "character_id": str(c.character.public_id) if c.character else None,
                "trigger_word": c.trigger_word,
                "version": c.version.number if c.version else None,
                "scale": c.scale,
                "identity": c.identity,
                "identity_words": identities[c.role]["words"],
                "identity_tone": identities[c.role]["tone"],
            }
            for c in scene.cast.all()
        ],
        "separate_identities": scene.separate_identities,
        "separation": scene.separation,
        "estimate": reference.estimate(scene.image_size)
        if reference.scene_method(scene) == reference.REFERENCE
        else separation.estimate(
            scene.separate_identities and scene.mode == Scene.Mode.TWO, scene.image_size
        ),
        "stages": [
            {
                "stage": stage["stage"],
                "label": _(separation.STAGE_LABELS.get(stage["stage"], stage["stage"])),
                "image_url": media_url(stage["image"]) if stage.get("image") else None,
                "cost": stage.get("cost", 0.0),
                "arguments": stage.get("arguments") or {},
            }
            for stage in scene.stages
        ],
        "retry_suggested": bool(scene.image)
        and any((c.identity or {}).get("verdict") == "different" for c in scene.cast.all()),
        "method": reference.scene_method(scene),
        "references": reference.references_out(scene),
        "cost": reference.scene_cost(scene),
        "compare_scene_id": (scene.inputs or {}).get("twin"),
        "created_at": scene.created_at,
    }
