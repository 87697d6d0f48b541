
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from characters.presenters import STYLE_ICONS
from webtoon.exceptions import DomainError, InvalidInput
from webtoon.params import uuid_or_none

from . import separation, services
from .api import scene_dict
from .vocabulary import EXPRESSIONS, PLACES, SITUATIONS


def _float(value, default=None):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _character_id(post, field):
    """The id the form chose; a value that is no id is a message, not a server error."""
    value = post.get(field) or None
    if value is not None and uuid_or_none(value) is None:
        raise InvalidInput(_("캐릭터를 다시 골라주세요."))
    return uuid_or_none(value)


@login_required
def index(request):
    """The scene page: one character (or prompt mode), two characters, and the gallery."""
    characters = list(services.characters_for_scenes(request.user))
    chosen = request.GET.get("character") or ""
    filter_id = uuid_or_none(request.GET.get("filter"))
    scenes = services.scenes_for(request.user, filter_id).select_related("job")
    scenes = scenes.prefetch_related("cast__version")[:60]  # scene_dict shows each role's v<n>
    rows = [
        {"id": str(c.public_id), "name": c.name, "icon": STYLE_ICONS.get(c.style_id, ""),
         "scale": c.lora_scale_default, "chosen": str(c.public_id) == chosen}
        for c in characters
    ]
    # The slider starts at the default of the character the dropdown shows selected.
    selected = next((c for c in rows if c["chosen"]), rows[0] if rows else None)
    context = {
        "characters": rows,
        "one_scale": selected["scale"] if selected else settings.LORA_SCALE_DEFAULT,
        "expressions": list(EXPRESSIONS),
        "places": list(PLACES),
        "situations": list(SITUATIONS),
        "limits": services.TWO_CHARACTER_LIMITS,
        "scenes": [scene_dict(s) for s in scenes],
        "filter": str(filter_id or ""),
        "sizes": services.IMAGE_SIZES,
        "estimate_separated": separation.estimate(True),
        "estimate_single": separation.estimate(False),
    }
    return render(request, "scenes/index.html", context)


def _scene_response(request, action):
    try:
        scene = action()
    except DomainError as exc:
        return render(request, "scenes/index.html#scene-error", {"error": str(exc)})
    return render(request, "scenes/index.html#scene", {"scene": scene_dict(scene)})


@login_required
@require_POST
def generate_one(request):
    post = request.POST
    return _scene_response(
        request,
        lambda: services.generate_with_character(
            owner=request.user,
            character_id=_character_id(post, "character"),
            scale=_float(post.get("lora_scale")),
            expression=post.get("expression", ""),
            location=post.get("location", ""),
            situation=post.get("situation", ""),
            image_size=post.get("image_size") or services.ONE_SIZE,
        ),
    )


@login_required
@require_POST
def generate_two(request):
    post = request.POST
    return _scene_response(
        request,
        lambda: services.generate_two_characters(
            owner=request.user,
            character_a_id=_character_id(post, "character_a"),
            character_b_id=_character_id(post, "character_b"),
            scale_a=_float(post.get("lora_scale_a"), services.TWO_SCALES[0]),
            scale_b=_float(post.get("lora_scale_b"), services.TWO_SCALES[1]),
            location=post.get("location", ""),
            situation=post.get("situation", ""),
            a_action=post.get("a_action", ""),
            b_action=post.get("b_action", ""),
            # An unticked box sends nothing: the form marks that it showed the box.
            separate_identities=post.get("separate_identities") == "on"
            if "separation_choice" in post
            else True,
        ),
    )


@login_required
def scene_item(request, scene_id):
    scene = services.scene_for(request.user, scene_id)
    if scene.job:
        services.jobs.request_refresh(scene.job)
    return render(request, "scenes/index.html#scene", {"scene": scene_dict(scene)})


@login_required
@require_POST
def regenerate(request, scene_id):
    return _scene_response(
        request, lambda: services.regenerate(owner=request.user, scene_id=scene_id)
    )


@login_required
@require_POST
def delete(request, scene_id):
    services.delete_scene(owner=request.user, scene_id=scene_id)
    return HttpResponse("")
