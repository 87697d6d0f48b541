
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from characters.presenters import STYLE_ICONS
from webtoon.exceptions import DomainError, InvalidInput
from webtoon.params import float_or, uuid_or_none
from webtoon.ui.money import price_text
from webtoon.ui.sizes import size_label

from . import reference, separation, services
from .presenters import scene_dict
from .vocabulary import EXPRESSIONS, PLACES, SITUATIONS


def _character_id(post, field):
    """The id the form chose; a value that is no id is a message, not a server error."""
    value = post.get(field) or None
    if value is not None and uuid_or_none(value) is None:
        raise InvalidInput(_("캐릭터를 다시 골라주세요."))
    return uuid_or_none(value)


def _character_option(character, chosen: str) -> dict:
    """A character in the scene forms' dropdowns. Issue 17: one not trained (yet) is used by
    reference; the option says so, and the page's price script reads its method."""
    method = "lora" if reference.has_lora(character) else "reference"
    note = ""
    if method == "reference":
        note = _(UNTRAINED_NOTES.get(character.status, "학습 전")) + " · " + _("참조 이미지로 사용")
    return {
        "id": str(character.public_id),
        "name": character.name,
        "icon": STYLE_ICONS.get(character.style_id, ""),
        "scale": character.lora_scale_default,
        "chosen": str(character.public_id) == chosen,
        "method": method,
        "note": note,
    }


@login_required
def index(request):
    """The scene page: one character (or prompt mode), two characters, and the gallery."""
    characters = list(services.characters_for_scenes(request.user))
    chosen = request.GET.get("character") or ""
    filter_id = uuid_or_none(request.GET.get("filter"))
    scenes = services.scenes_for(request.user, filter_id).select_related("job")
    # scene_dict shows each role's v<n>; the page names each role's character.
    scenes = scenes.prefetch_related("cast__version", "cast__character")[:60]
    rows = [_character_option(c, chosen) for c in characters]
    # The slider starts at the default of the character the dropdown shows selected.
    selected = next((c for c in rows if c["chosen"]), rows[0] if rows else None)
    separated, single = separation.estimate(True), separation.estimate(False)
    # What each button costs by method and size (the same estimate a scene card's
    # [다시 생성] shows, per megapixel): the page shows the default size's row and its script
    # follows the choices with the rest.
    one_prices = {
        size: {
            "lora": price_text(separation.estimate(False, size)["total"]),
            "reference": price_text(reference.unit_cost(size)),  # issue 17: the method choice
        }
        for size in services.IMAGE_SIZES
    }
    two_prices = {
        services.TWO_SIZE: {
            "lora": price_text(separated["total"]),
            "lora_single": price_text(single["total"]),
            "reference": price_text(reference.unit_cost(services.TWO_SIZE)),
        }
    }
    context = {
        "characters": rows,
        "one_scale": selected["scale"] if selected else settings.LORA_SCALE_DEFAULT,
        "expressions": list(EXPRESSIONS),
        "places": list(PLACES),
        "situations": list(SITUATIONS),
        "limits": services.TWO_CHARACTER_LIMITS,
        "scenes": [page_scene(s) for s in scenes],
        "filter": str(filter_id or ""),
        "sizes": services.IMAGE_SIZES,
        "estimate_separated": separated,
        "estimate_single": single,
        "max_scale_sum": services.MAX_SCALE_SUM,
        "one_prices": one_prices,
        "two_prices": two_prices,
        "one": one_prices[services.ONE_SIZE],
        "two": two_prices[services.TWO_SIZE],
        "reference_explanation": _(reference.EXPLANATION),
    }
    return render(request, "scenes/index.html", context)


def page_scene(scene) -> dict:
    """scene_dict plus what the page shows instead of the English prompt (issue 15: Korean
    in, Korean out): the words typed, and the characters by name."""
    row = scene_dict(scene)
    inputs = scene.inputs or {}
    cast = scene.cast.all()
    names = {c.role: c.character.name if c.character else c.trigger_word for c in cast}
    labels = (
        ("expression", _("표정")),
        ("location", _("장소")),
        ("situation", _("상황")),
        ("a_action", names.get("A", "A")),
        ("b_action", names.get("B", "B")),
    )
    row["words"] = " · ".join(
        f"{label}: {inputs[key]}" for key, label in labels if (inputs.get(key) or "").strip()
    )
    for cast in row["characters"]:
        cast["name"] = names.get(cast["role"], cast["trigger_word"])
    row["size_label"] = size_label(scene.image_size)
    row["method_label"] = _(reference.METHOD_LABELS.get(row["method"], "")) if row["method"] else ""
    if row["compare_scene_id"] and reference.twin_of(scene) is None:
        row["compare_scene_id"] = None  # its twin was deleted: it may be compared again
    row["can_compare"] = not row["compare_scene_id"] and reference.can_compare(scene)
    row["compare_price"] = reference.compare_price(scene) if row["can_compare"] else 0
    return row


def _scene_response(request, action, error_box: str = ""):
    """A new scene card for the gallery; a refusal goes next to the form's button
    (`error_box`: the id of its message area), and a success clears that area."""
    try:
        scene = action()
    except DomainError as exc:
        response = render(request, "scenes/index.html#scene-error", {"error": str(exc)})
        if error_box:
            response["HX-Retarget"] = f"#{error_box}"
            response["HX-Reswap"] = "innerHTML"
        return response
    response = render(request, "scenes/index.html#scene", {"scene": page_scene(scene)})
    if error_box:
        response.write(f'<div id="{error_box}" hx-swap-oob="innerHTML"></div>')
    return response


@login_required
@require_POST
def generate_one(request):
    post = request.POST
    return _scene_response(
        request,
        lambda: services.generate_with_character(
            owner=request.user,
            character_id=_character_id(post, "character"),
            scale=float_or(post.get("lora_scale")),
            expression=post.get("expression", ""),
            location=post.get("location", ""),
            situation=post.get("situation", ""),
            image_size=post.get("image_size") or services.ONE_SIZE,
            method=post.get("method") or None,
        ),
        error_box="one-error",
    )


SCALE_SUM_CONFIRM = (
    "두 캐릭터 반영 강도의 합이 1.5를 넘습니다. 얼굴이 섞이거나 약해질 수 있어요. "
    "강도를 낮추거나, 이대로 만들려면 슬라이더 옆 확인란을 체크해주세요."
)


def _confirmed_scales(post) -> tuple[float, float]:
    """Issue 15: a scale sum over the limit is confirmed on the page before anything is paid."""
    scale_a = float_or(post.get("lora_scale_a"), services.TWO_SCALES[0])
    scale_b = float_or(post.get("lora_scale_b"), services.TWO_SCALES[1])
    over = scale_a + scale_b > services.MAX_SCALE_SUM + 1e-9
    if over and post.get("confirm_scale_sum") != "on":
        raise InvalidInput(_(SCALE_SUM_CONFIRM))
    return scale_a, scale_b


def _two_characters(request):
    post = request.POST
    character_a_id = _character_id(post, "character_a")
    character_b_id = _character_id(post, "character_b")
    scale_a, scale_b = _confirmed_scales(post)
    return services.generate_two_characters(
        owner=request.user,
        character_a_id=character_a_id,
        character_b_id=character_b_id,
        scale_a=scale_a,
        scale_b=scale_b,
        location=post.get("location", ""),
        situation=post.get("situation", ""),
        a_action=post.get("a_action", ""),
        b_action=post.get("b_action", ""),
        # An unticked box sends nothing: the form marks that it showed the box.
        separate_identities=post.get("separate_identities") == "on"
        if "separation_choice" in post
        else True,
        method=post.get("method") or None,
    )


@login_required
@require_POST
def generate_two(request):
    return _scene_response(request, lambda: _two_characters(request), error_box="two-error")


UNTRAINED_NOTES = {"draft": "학습 전", "queued": "학습 대기", "training": "학습 중",
                   "failed": "학습 실패", "active": "LoRA 없음"}


@login_required
def compare(request, scene_id):
    """Issue 17: the same scene made both ways, side by side, each with its identity. POST
    makes the other one (once) and comes back here."""
    if request.method == "POST":
        try:
            reference.compare(owner=request.user, scene_id=scene_id)
        except DomainError as exc:
            return render(request, "scenes/index.html#scene-error", {"error": str(exc)})
        url = reverse("scenes:compare", kwargs={"scene_id": scene_id})
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)
    scene = services.scene_for(request.user, scene_id)
    twin = reference.twin_of(scene)
    pair = (scene, twin) if reference.scene_method(scene) == reference.LORA else (twin, scene)
    for one in pair:
        if one is not None and one.job and not one.image:
            services.jobs.request_refresh(one.job)
    # Not made the other way yet: that side offers the card's compare button.
    sides = [(m, page_scene(one) if one else None) for m, one in zip(("lora", "reference"), pair,
                                                                     strict=True)]
    return render(request, "scenes/compare.html", {"sides": sides,
                                                   "explanation": _(reference.EXPLANATION)})


@login_required
def scene_item(request, scene_id):
    scene = services.scene_for(request.user, scene_id)
    if scene.job:
        services.jobs.request_refresh(scene.job)
    return render(request, "scenes/index.html#scene", {"scene": page_scene(scene)})


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
    # The card goes; the page says what happened (issue 15).
    flash = render_to_string("characters/list.html#flash", {"flash": _("씬을 삭제했습니다.")})
    return HttpResponse(flash)
