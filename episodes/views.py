"""Episode pages: the list, the editor (htmx partials) and the scene page's "add" button."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from characters.presenters import STYLE_ICONS
from scenes import reference as scene_reference
from scenes import services as scenes
from scenes.vocabulary import EXPRESSIONS, PLACES, SITUATIONS
from webtoon.exceptions import DomainError, InvalidInput
from webtoon.params import float_or, int_or, uuid_or_none
from webtoon.ui.money import price_text

from . import platforms, presenters, queries, rendering, services

EDITOR = "episodes/editor.html"
DEFAULT_PLATFORM = "webtoon_canvas"  # what most creators upload to first


def _error(request, exc: DomainError, target: str = "#editor-error") -> HttpResponse:
    """A refused action: its message goes to the page's error line, nothing else changes."""
    response = render(request, f"{EDITOR}#message", {"error": str(exc)})
    return reswap(retarget(response, target), "innerHTML")


def _panels_response(request, episode) -> HttpResponse:
    panels = list(queries.panels_of(episode))
    context = {"panels": [presenters.panel_dict(p, i) for i, p in enumerate(panels, 1)]}
    return render(request, f"{EDITOR}#panels", context)


def _panel_response(request, panel) -> HttpResponse:
    panel = queries.panels_of(panel.episode).get(pk=panel.pk)
    number = list(panel.episode.panels.order_by("position", "id")).index(panel) + 1
    return render(request, f"{EDITOR}#panel", {"panel": presenters.panel_dict(panel, number)})


# --- pages ---------------------------------------------------------------------------------------
@login_required
@require_GET
def episode_list(request):
    return render(request, "episodes/list.html", _list_context(request.user))


def _list_context(user, **extra) -> dict:
    default = services.default_preset()
    return {
        "episodes": [presenters.episode_dict(e) for e in queries.episodes_for(user)],
        "presets": list(queries.presets()),
        "default_preset": default.slug if default else "",
        **extra,
    }


@login_required
@require_POST
def episode_create(request):
    try:
        episode = services.create_episode(
            owner=request.user,
            title=request.POST.get("title", ""),
            preset_id=request.POST.get("preset") or None,
        )
    except DomainError as exc:
        context = _list_context(request.user, error=str(exc), title=request.POST.get("title"))
        return render(request, "episodes/list.html", context, status=422)
    return redirect(episode)


@login_required
@require_GET
def editor(request, episode_id):
    episode = queries.episode_for(request.user, episode_id)
    panels = list(queries.panels_of(episode))
    characters = scenes.characters_for_scenes(request.user)
    gallery = scenes.scenes_for(request.user).exclude(image="")[:60]
    context = {
        **_export_context(episode),  # the episode, its last export and preview
        "panels": [presenters.panel_dict(p, i) for i, p in enumerate(panels, 1)],
        "presets": list(queries.presets()),
        "characters": [
            {"id": str(c.public_id), "name": c.name, "icon": STYLE_ICONS.get(c.style_id, "")}
            for c in characters
        ],
        "expressions": list(EXPRESSIONS),
        "places": list(PLACES),
        "situations": list(SITUATIONS),
        "sizes": scenes.IMAGE_SIZES,
        "max_batch": services.MAX_BATCH,
        "gallery": [{"id": str(s.public_id), "prompt": s.prompt} for s in gallery],
        # Issue 17: a character not trained yet makes panels from its reference images.
        "reference_price": price_text(scene_reference.unit_cost(scenes.ONE_SIZE)),
        "reference_explanation": _(scene_reference.EXPLANATION),
    }
    return render(request, EDITOR, context)


@login_required
@require_POST
def episode_update(request, episode_id):
    post = request.POST
    try:
        episode = services.update_episode(
            owner=request.user,
            episode_id=episode_id,
            title=post.get("title") if "title" in post else None,
            preset_id=(post.get("preset") or None) if "preset" in post else services.UNSET,
        )
    except DomainError as exc:
        return _error(request, exc)
    context = {"episode": presenters.episode_dict(episode), "presets": list(queries.presets())}
    return render(request, f"{EDITOR}#episode-header", context)


@login_required
@require_POST
def episode_delete(request, episode_id):
    services.delete_episode(owner=request.user, episode_id=episode_id)
    return redirect("episodes:list")


# --- panels --------------------------------------------------------------------------------------
def _character_ids(post) -> list[UUID]:
    """The form's A and B (either may be empty: prompt mode, one character)."""
    ids = []
    for field in ("character_a", "character_b"):
        value = post.get(field) or ""
        if value and uuid_or_none(value) is None:
            raise InvalidInput(_("캐릭터를 다시 골라주세요."))
        if value:
            ids.append(uuid_or_none(value))
    return ids


@login_required
@require_POST
def panel_generate(request, episode_id):
    post = request.POST
    try:
        panels = services.generate_panels(
            owner=request.user,
            episode_id=episode_id,
            character_ids=_character_ids(post),
            expression=post.get("expression", ""),
            b_expression=post.get("b_expression", ""),
            location=post.get("location", ""),
            situation=post.get("situation", ""),
            scale=float_or(post.get("lora_scale")),
            image_size=post.get("image_size") or scenes.ONE_SIZE,
            count=int_or(post.get("count"), 1),
            method=post.get("method") or None,
        )
    except DomainError as exc:
        return _error(request, exc)
    return _panels_response(request, panels[0].episode)


@login_required
@require_POST
def panel_upload(request, episode_id):
    try:
        panel = services.upload_panel(
            owner=request.user, episode_id=episode_id, upload=request.FILES.get("image")
        )
    except DomainError as exc:
        return _error(request, exc)
    return _panels_response(request, panel.episode)


@login_required
@require_POST
def panel_from_scene(request, episode_id):
    try:
        scene_id = uuid_or_none(request.POST.get("scene"))
        panel = services.add_scene_panel(
            owner=request.user, episode_id=episode_id, scene_id=scene_id
        )
    except DomainError as exc:
        return _error(request, exc)
    return _panels_response(request, panel.episode)


@login_required
@require_GET
def panel_image(request, panel_id):
    """Polled while a panel's scene is generating: just its picture, never its text."""
    panel = services.watch_panel(owner=request.user, panel_id=panel_id)
    panel = queries.panels_of(panel.episode).get(pk=panel.pk)
    return render(request, f"{EDITOR}#panel-image", {"panel": presenters.panel_dict(panel)})


@login_required
@require_POST
def panel_move(request, panel_id):
    offset = -1 if request.POST.get("offset") == "-1" else 1
    panel = services.move_panel(owner=request.user, panel_id=panel_id, offset=offset)
    return _panels_response(request, panel.episode)


@login_required
@require_POST
def panel_height(request, panel_id):
    try:
        panel = services.set_panel_height(
            owner=request.user, panel_id=panel_id, height=int_or(request.POST.get("height"))
        )
    except DomainError as exc:
        return _error(request, exc)
    return _panel_response(request, panel)


@login_required
@require_POST
def panel_delete(request, panel_id):
    episode = services.delete_panel(owner=request.user, panel_id=panel_id)
    return _panels_response(request, episode)


@login_required
@require_GET
def panel_preview(request, panel_id):
    """The panel drawn exactly as the export draws it (PNG)."""
    data = services.panel_preview(owner=request.user, panel_id=panel_id)
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "no-store"
    return response


# --- bubbles -------------------------------------------------------------------------------------
@login_required
@require_POST
def bubble_add(request, panel_id):
    try:
        bubble = services.add_bubble(
            owner=request.user, panel_id=panel_id, kind=request.POST.get("kind", "")
        )
    except DomainError as exc:
        return _error(request, exc)
    return render(request, f"{EDITOR}#bubble", {"bubble": presenters.bubble_dict(bubble)})


@login_required
@require_POST
def bubble_update(request, bubble_id):
    post = request.POST
    # Empty fields are "unchanged" (a cleared size box), except the text, which may be empty.
    changes = {n: post[n] for n in (*services.LAYOUT_FIELDS, "kind", "font_size") if post.get(n)}
    if "text" in post:
        changes["text"] = post["text"]
    try:
        bubble = services.update_bubble(owner=request.user, bubble_id=bubble_id, **changes)
    except DomainError as exc:
        return _error(request, exc)
    return render(request, f"{EDITOR}#bubble", {"bubble": presenters.bubble_dict(bubble)})


@login_required
@require_POST
def bubble_delete(request, bubble_id):
    services.delete_bubble(owner=request.user, bubble_id=bubble_id)
    return HttpResponse("")


# --- export --------------------------------------------------------------------------------------
@login_required
@require_POST
def export_create(request, episode_id):
    """Export (or, with preview=1, preview) the episode for the chosen platform preset."""
    episode = queries.episode_for(request.user, episode_id)
    post = request.POST
    try:
        services.request_export(
            owner=request.user,
            episode_id=episode_id,
            fmt=post.get("format", "png"),
            preset=post.get("preset") or "original",
            preview=post.get("preview") == "1",
        )
    except DomainError as exc:
        return _export_response(request, episode, error=str(exc), preset=post.get("preset"))
    return _export_response(request, episode)  # an inline queue (sync) has run it already


@login_required
@require_GET
def export_item(request, export_id):
    """The export section of the export's episode (polled while it is being made)."""
    export = queries.export_for(request.user, export_id)
    return _export_response(request, export.episode)


@login_required
@require_GET
def export_status(request, episode_id):
    """The export section, polled while an export or a preview is being made."""
    return _export_response(request, queries.episode_for(request.user, episode_id))


def _attachment(name: str, filename: str) -> FileResponse:
    if not name or not default_storage.exists(name):
        raise Http404
    # Django writes a non-ASCII name as RFC 5987 filename*=utf-8''…, with an ASCII fallback.
    return FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=filename)


@login_required
@require_GET
def export_download(request, export_id, what: str):
    """The ZIP or PDF as an attachment named after the episode (the media URL has a random
    name)."""
    export = queries.export_for(request.user, export_id)
    field = {"zip": export.zip_file, "pdf": export.pdf_file}.get(what)
    if not field:
        raise Http404
    return _attachment(field.name, services.download_name(export, what))


@login_required
@require_GET
def export_image(request, export_id, number: int):
    """One exported image as "<title>_01.jpg"."""
    export = queries.export_for(request.user, export_id)
    if not 1 <= number <= len(export.images):
        raise Http404
    name = export.images[number - 1].get("name", "")
    return _attachment(name, services.download_name(export, "image", number))


def _export_context(episode, **extra) -> dict:
    export = queries.latest_export(episode)
    preview = queries.latest_preview(episode)
    last = max((e for e in (export, preview) if e), key=lambda e: e.created_at, default=None)
    chosen = extra.pop("preset", None) or (last.preset if last else DEFAULT_PLATFORM)
    return {
        "episode": presenters.episode_dict(episode),
        "export": presenters.export_dict(export) if export else None,
        "preview": presenters.export_dict(preview) if preview else None,
        # The preview shows the episode as it was: say so once it has been edited since.
        "preview_stale": bool(preview and preview.created_at < episode.updated_at),
        "platforms": presenters.platform_choices(),
        "chosen_preset": chosen,
        "chosen_formats": platforms.PLATFORMS.get(chosen, platforms.PLATFORMS["original"]).formats,
        "chosen_format": last.format if last else "jpeg",
        "strip": {"width": rendering.STRIP_WIDTH, "gutter": rendering.GUTTER},
        **extra,
    }


def _export_response(request, episode, **extra) -> HttpResponse:
    episode.refresh_from_db()
    return render(request, f"{EDITOR}#export", _export_context(episode, **extra))


# --- the scene page ------------------------------------------------------------------------------
@login_required
@require_GET
def scene_picker(request):
    """The scene page's "add to which episode" select (loaded by the page, kept up to date)."""
    return render(request, "episodes/scene_add.html#picker", _picker_context(request.user))


def _picker_context(user, selected: str = "") -> dict:
    episodes = [presenters.episode_dict(e) for e in queries.episodes_for(user)]
    selected = selected or (episodes[0]["episode_id"] if episodes else "new")
    return {"episodes": episodes, "selected": selected}


@login_required
@require_POST
def scene_add(request, scene_id):
    try:
        panel = services.add_scene_to_episode(
            owner=request.user, scene_id=scene_id, target=request.POST.get("episode", "")
        )
    except DomainError as exc:
        return render(request, "episodes/scene_add.html#added", {"error": str(exc)})
    context = {
        "panel": panel,
        "episode": panel.episode,
        "number": panel.episode.panels.count(),
        **_picker_context(request.user, str(panel.episode.public_id)),
        "oob": True,
    }
    return render(request, "episodes/scene_add.html#added", context)
