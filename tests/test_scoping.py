"""Owner scoping, systematically: user B never sees, edits, deletes or downloads user A's
objects or files, and the back office is staff-only.

How it stays complete: the routes are enumerated, not listed by hand. Every page URL pattern
comes from walking the project's URL resolver, every API operation from the NinjaAPI's
routers (method + path template, with its path/query/body fields). Each route must then be
classified in one of the tables below:

- PAGE_CASES / API_CASES: routes that take an object id (in the path, the query or the body).
  Each case says how to call the route as B with A's object (or B's own container holding
  A's object). test_every_route_is_classified fails, listing the routes, when a route that
  takes an id has no case, or when any route is in no table at all, so a route added later
  needs a scoping case (or a stated reason) before the suite passes.
- LIST_PAGES / API_LISTS: routes without ids that show the caller's objects: B's answer is
  200, shows B's own objects and nothing of A's (names, ids).
- NO_OBJECT_PAGES / NO_OBJECT_API: routes that take no id and show no user's objects (login,
  create-only endpoints ...), each with the reason.

Every case runs as B (session login for pages, a Bearer token for the API) against a fresh
world of objects for A and for B, and asserts: 404 (the API's answer is JSON {"detail"}),
no byte of A's files and none of A's text in the answer, every row and every stored file
exactly as before (nothing deleted, renamed, retrained or created), and no call to fal.
The same request made by A on A's own objects must not be a 404: the control that proves
each case really reaches the object (a wrong URL would 404 for everyone). For reads, B's own
object through the same route shows nothing of A's either.

Media: every FileField of every model (and the export images kept in JSON) holds a file of
A's in the world; B and anonymous get 404 (never the bytes), A gets the bytes. The admin:
every admin URL pattern (enumerated, custom back-office views included) redirects anonymous
users and non-staff users to the admin login; the support group cannot purge.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from PIL import Image

from characters import management
from characters.models import Character, CharacterImage, SweepImage
from episodes import services as episode_services
from episodes.models import Export
from scenes.models import Scene, SceneCharacter
from tests.characters.factories import jpeg, trained_character
from tests.characters.test_curation import astronaut_photo
from tests.characters.test_training import make_session
from tests.episodes.helpers import episode as make_episode
from tests.episodes.helpers import picture, uploaded_panel
from webtoon.accounts.services import create_api_token
from webtoon.accounts.support_group import SUPPORT_GROUP, ensure_support_group
from webtoon.api import api as ninja_api
from webtoon.jobs import services as jobs
from webtoon.jobs.models import Job, JobState
from webtoon.media import user_file_name
from webtoon.notifications import services as notifications

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_sessions(settings):
    # These tests package sessions of a few cuts; the 15-cut rule (issue 15) is tested with
    # its real value in tests/test_trust.py.
    settings.MIN_SELECTED_CUTS = 1

A_MARK = "앨리스비밀"
B_MARK = "밥의것"


# --- files of this test only ---------------------------------------------------------------------
@pytest.fixture(autouse=True)
def private_dirs(settings, tmp_path):
    """Media, the offline backend and the local backup folder in this test's own temp dir, so
    "no file was written" compares this test's files only."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    settings.WEBTOON_OFFLINE_DIR = tmp_path / "offline"
    settings.LOCAL_BACKUP_PATH = tmp_path / "backups"
    return tmp_path


def file_state(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


# --- the world: one full set of objects per user -------------------------------------------------
@dataclass
class World:
    user: Any
    mark: str
    token: str  # a raw API token of the user's
    photo: Any
    session: Any
    cuts_job: Any
    character: Any
    training_job: Any
    gallery: Any
    job: Any
    scene: Any
    episode: Any
    panel: Any
    bubble: Any
    export: Any
    notification: Any
    api_token: Any  # another token, the one the revoke page is pointed at
    ids: list[str] = field(default_factory=list)  # every public id, for "not in the answer"


def _save(owner, folder: str, ext: str, data: bytes) -> str:
    return default_storage.save(user_file_name(owner.pk, folder, ext), ContentFile(data))


def build_world(user, mark: str) -> World:
    """Every kind of object a user owns, each with its files, named with `mark`."""
    _, token = create_api_token(user=user, name=f"{mark} script")
    photo = astronaut_photo(user)
    session = make_session(user, cuts=4)
    cuts_job = jobs.create_job(
        owner=user, kind="cuts", calls=[jobs.CallSpec("fal-ai/x", {}, slot=1)],
        subject={"session": session.pk}, start=False,
    )
    Job.objects.filter(pk=cuts_job.pk).update(state=JobState.SUCCEEDED)
    character = trained_character(user, name=f"{mark} 캐릭터")
    training_job = jobs.create_job(
        owner=user, kind="training",
        calls=[jobs.CallSpec("fal-ai/trainer", {}, output_kind="lora")],
        subject={"character": character.pk}, start=False,
    )
    Job.objects.filter(pk=training_job.pk).update(state=JobState.SUCCEEDED)
    # The character was made from the session (a character without one breaks the retrain
    # page: its template links to the session unconditionally).
    Character.objects.filter(pk=character.pk).update(training_job=training_job, session=session)
    gallery = CharacterImage.objects.create(
        character=character, version=character.current_version, prompt=f"{mark} 테스트",
        scale=0.8, image=_save(user, "gallery", "jpg", jpeg((90, 10, 10), (64, 64))),
    )
    # Issue 16's files: the reference sheet and one image of the scale sweep.
    Character.objects.filter(pk=character.pk).update(
        reference_sheet=_save(user, "sheets", "png", picture((80, 100)))
    )
    SweepImage.objects.create(
        character=character, version=character.current_version, scale=0.8, prompt_number=1,
        prompt=f"{mark} 비교", image=_save(user, "sweep", "jpg", jpeg((20, 90, 20), (64, 64))),
    )
    job = jobs.create_job(
        owner=user, kind="image",
        calls=[jobs.CallSpec("fal-ai/flux-lora", {"prompt": f"{mark} 그림"})], start=False,
    )
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED, error_code="deadline")
    job.calls.update(output_file=_save(user, "jobs", "jpg", jpeg((10, 90, 10), (64, 64))))
    scene = Scene.objects.create(
        owner=user, mode=Scene.Mode.ONE, prompt=f"{character.trigger_word}, {mark} 장면",
        image_size="portrait_4_3", steps=28, seed=7, job=job,
        image=_save(user, "scenes", "jpg", jpeg((10, 10, 90), (96, 128))),
    )
    SceneCharacter.objects.create(
        scene=scene, character=character, version=character.current_version, role="A",
        trigger_word=character.trigger_word, lora_url=character.lora_url, scale=0.8,
    )
    episode = make_episode(user, title=f"{mark} 1화")
    panel = uploaded_panel(user, episode, size=(80, 100))
    bubble = episode_services.add_bubble(
        owner=user, panel_id=panel.public_id, kind="speech", text=f"{mark} 대사"
    )
    export = Export.objects.create(
        episode=episode, owner=user, format="png", state=Export.State.SUCCEEDED, width=800,
        max_height=1280, total_height=1000,
    )
    folder = f"episodes/exports/{export.public_id}"
    export.images = [{"name": _save(user, folder, "png", picture((80, 100))),
                      "width": 800, "height": 1000}]
    export.zip_file = _save(user, folder, "zip", _zip({"01.png": picture((80, 100))}))
    export.pdf_file = _save(user, folder, "pdf", b"%PDF-1.4\n% " + mark.encode() + b"\n%%EOF")
    export.preview_file = _save(user, folder, "jpg", picture((80, 100)))
    export.save()
    notification = notifications.notify(
        user, kind="training_completed", message=f"{mark} 학습 완료",
        link=character.get_absolute_url(),
    )
    api_token, _raw = create_api_token(user=user, name=f"{mark} 토큰")
    world = World(
        user=user, mark=mark, token=token, photo=photo, session=session, cuts_job=cuts_job,
        character=Character.objects.get(pk=character.pk), training_job=training_job,
        gallery=gallery, job=job, scene=scene, episode=episode, panel=panel, bubble=bubble,
        export=export, notification=notification, api_token=api_token,
    )
    world.ids = [
        str(o.public_id)
        for o in (photo, session, cuts_job, character, training_job, job, scene, episode, panel,
                  bubble, export)
    ]
    return world


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def alice_world(user, fal):
    return build_world(user, A_MARK)


@pytest.fixture
def bob_world(other_user, fal):
    return build_world(other_user, B_MARK)


# --- what "unchanged" means ----------------------------------------------------------------------
# Columns that change on a refused request by design: the caller's own token is stamped on use.
VOLATILE = {("accounts", "apitoken"): {"last_used_at"}, ("auth", "user"): {"last_login"}}
NOT_DATA = {("sessions", "session"), ("contenttypes", "contenttype"), ("auth", "permission")}


def db_state() -> dict[str, list]:
    """Every row of every model (but sessions and Django's own catalogue tables)."""
    state = {}
    for model in apps.get_models():
        key = (model._meta.app_label, model._meta.model_name)
        if key in NOT_DATA or not model._meta.managed:
            continue
        skip = VOLATILE.get(key, set())
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        state[".".join(key)] = list(model.objects.order_by("pk").values_list(*names))
    return state


def stored_state(settings) -> dict[str, dict[str, str]]:
    roots = {
        "media": Path(settings.MEDIA_ROOT),
        "offline": Path(settings.WEBTOON_OFFLINE_DIR),
        "backups": Path(settings.LOCAL_BACKUP_PATH),
    }
    return {name: file_state(root) for name, root in roots.items()}


def file_fields() -> list[tuple[type[models.Model], models.FileField]]:
    return [
        (model, f)
        for model in apps.get_models()
        for f in model._meta.get_fields()
        if isinstance(f, models.FileField)
    ]


def owned_files(world: World) -> dict[str, str]:
    """label -> storage name, for every file of the world's user (every FileField, and the
    export images kept in JSON)."""
    prefix = f"u/{world.user.pk}/"
    found = {}
    for model, f in file_fields():
        for pk, name in model.objects.exclude(**{f.name: ""}).values_list("pk", f.name):
            if name and name.startswith(prefix):
                found[f"{model._meta.label_lower}.{f.name}#{pk}"] = name
    for image in world.export.images:
        found[f"episodes.export.images#{world.export.pk}"] = image["name"]
    return found


def leak_probes(world: World) -> list[bytes]:
    """Pieces of the user's files and text that must never appear in someone else's answer."""
    probes = [world.mark.encode()]
    for name in owned_files(world).values():
        with default_storage.open(name, "rb") as fh:
            data = fh.read()
        middle = len(data) // 2
        probes.append(data[max(0, middle - 24) : middle + 24])
    return probes


def body_of(response) -> bytes:
    """The answer's bytes; for JSON, also as text with its \\u escapes undone (so a Korean
    name is found in it)."""
    data = (
        b"".join(response.streaming_content)
        if getattr(response, "streaming", False)
        else response.content
    )
    if response.get("Content-Type", "").startswith("application/json") and data:
        data += json.dumps(json.loads(data), ensure_ascii=False).encode()
    return data


# --- the table -----------------------------------------------------------------------------------
Builder = Callable[["World", "World"], Any]  # (caller's world, A's world) -> value


@dataclass(frozen=True)
class Case:
    route: str  # a page's URL name, or "METHOD /api/path/{param}"
    method: str
    url: Builder  # -> path
    data: Builder | None = None  # -> form fields (pages), JSON body (API), or files
    multipart: bool = False
    label: str = ""
    # What B gets. 404 unless stated; another 4xx only with the reason in `label`.
    status: int = 404

    @property
    def id(self) -> str:
        return f"{self.route}[{self.method}]{'-' + self.label if self.label else ''}"

    @property
    def is_api(self) -> bool:
        return self.route.split(" ", 1)[-1].startswith("/api/")


def page(name: str, method: str, kwargs: Builder, data: Builder | None = None, **extra) -> Case:
    return Case(
        route=name, method=method, url=lambda me, them: reverse(name, kwargs=kwargs(me, them)),
        data=data, **extra,
    )


def endpoint(method: str, template: str, values: Builder | None = None,
             body: Builder | None = None, **extra) -> Case:
    return Case(
        route=f"{method} /api{template}", method=method,
        url=lambda me, them: "/api" + template.format(**(values(me, them) if values else {})),
        data=body, **extra,
    )


def theirs(**picks: str) -> Builder:
    """Path kwargs from A's world: theirs(character_id="character") -> A's character id."""

    def build(me: World, them: World) -> dict:
        return {k: _public(getattr(them, attr)) for k, attr in picks.items()}

    return build


def _public(obj) -> Any:
    return getattr(obj, "public_id", None) or obj.pk


def mine(**picks: str) -> Builder:
    def build(me: World, them: World) -> dict:
        return {k: _public(getattr(me, attr)) for k, attr in picks.items()}

    return build


def s(value) -> str:
    return str(_public(value))


def upload() -> dict:
    return {"image": SimpleUploadedFile("p.png", picture((64, 64)), "image/png")}


# Pages that take an object id (path, or a form field naming one of the caller's objects).
PAGE_CASES = [
    # characters: the wizard
    page("characters:style", "GET", theirs(photo_id="photo")),
    page("characters:style", "POST", theirs(photo_id="photo"),
         lambda m, t: {"style_id": "original"}),
    page("characters:session", "GET", theirs(session_id="session")),
    page("characters:session_poll", "GET", theirs(session_id="session")),
    page("characters:prepare", "GET", theirs(session_id="session")),
    page("characters:prepare", "POST", theirs(session_id="session"),
         lambda m, t: {"name": "뺏은 캐릭터"}),
    page("characters:cut_toggle", "POST", lambda m, t: {"session_id": t.session.public_id,
                                                         "number": 1}, lambda m, t: {}),
    page("characters:cut_regenerate", "POST",
         lambda m, t: {"session_id": t.session.public_id, "number": 1}),
    page("characters:cuts_select_all", "POST", theirs(session_id="session")),
    page("characters:cuts_clear_all", "POST", theirs(session_id="session")),
    page("characters:cuts_additional", "POST", theirs(session_id="session"),
         lambda m, t: {"category": ""}),
    page("characters:draft_discard", "POST", theirs(session_id="session")),
    # characters: training and My Characters
    page("characters:detail", "GET", theirs(character_id="character")),
    page("characters:train", "GET", theirs(character_id="character")),
    page("characters:train", "POST", theirs(character_id="character")),
    page("characters:retry", "POST", theirs(character_id="character")),
    page("characters:card", "GET", theirs(character_id="character")),
    page("characters:delete_confirm", "GET",
         lambda m, t: {"character_id": t.character.public_id, "step": 1}),
    page("characters:delete", "POST", theirs(character_id="character")),
    page("characters:edit", "POST", theirs(character_id="character"),
         lambda m, t: {"name": "뺏기", "lora_scale_default": "0.8"}),
    page("characters:test_generate", "POST", theirs(character_id="character"),
         lambda m, t: {"prompt": "x", "scale": "0.8", "image_size": "square_hd"}),
    page("characters:gallery_item", "GET",
         lambda m, t: {"character_id": t.character.public_id, "image_id": t.gallery.pk}),
    page("characters:gallery_item", "GET",
         lambda m, t: {"character_id": m.character.public_id, "image_id": t.gallery.pk},
         label="own-character-their-image"),
    page("characters:retrain", "GET", theirs(character_id="character")),
    page("characters:retrain", "POST", theirs(character_id="character"),
         lambda m, t: {"mode": "new", "confirm_cost": "on", "cuts": ["1"]}),
    # jobs, notifications, tokens
    page("job_detail", "GET", theirs(job_id="job")),
    page("job_retry", "POST", theirs(job_id="job")),
    page("notifications:open", "GET", theirs(pk="notification")),
    page("token_revoke", "POST", theirs(pk="api_token")),
    # scenes (the generate forms name characters in the body)
    page("scenes:scene", "GET", theirs(scene_id="scene")),
    page("scenes:regenerate", "POST", theirs(scene_id="scene")),
    page("scenes:compare", "GET", theirs(scene_id="scene")),
    page("scenes:compare", "POST", theirs(scene_id="scene")),
    page("scenes:delete", "POST", theirs(scene_id="scene")),
    page("scenes:generate_one", "POST", lambda m, t: {},
         lambda m, t: {"character": s(t.character), "expression": "미소"}),
    page("scenes:generate_two", "POST", lambda m, t: {},
         lambda m, t: {"character_a": s(m.character), "character_b": s(t.character)},
         label="their-b"),
    page("scenes:generate_two", "POST", lambda m, t: {},
         lambda m, t: {"character_a": s(t.character), "character_b": s(m.character)},
         label="their-a"),
    # episodes
    page("episodes:editor", "GET", theirs(episode_id="episode")),
    page("episodes:update", "POST", theirs(episode_id="episode"), lambda m, t: {"title": "뺏기"}),
    page("episodes:delete", "POST", theirs(episode_id="episode")),
    page("episodes:panel_generate", "POST", theirs(episode_id="episode"),
         lambda m, t: {"situation": "x"}),
    page("episodes:panel_generate", "POST", mine(episode_id="episode"),
         lambda m, t: {"character_a": s(t.character)}, label="own-episode-their-character"),
    page("episodes:panel_generate", "POST", mine(episode_id="episode"),
         lambda m, t: {"character_a": s(m.character), "character_b": s(t.character)},
         label="own-episode-their-character-b"),
    page("episodes:panel_upload", "POST", theirs(episode_id="episode"), lambda m, t: upload()),
    page("episodes:panel_from_scene", "POST", theirs(episode_id="episode"),
         lambda m, t: {"scene": s(m.scene)}),
    page("episodes:panel_from_scene", "POST", mine(episode_id="episode"),
         lambda m, t: {"scene": s(t.scene)}, label="own-episode-their-scene"),
    page("episodes:export", "POST", theirs(episode_id="episode"), lambda m, t: {"format": "png"}),
    page("episodes:panel_image", "GET", theirs(panel_id="panel")),
    page("episodes:panel_move", "POST", theirs(panel_id="panel"), lambda m, t: {"offset": "1"}),
    page("episodes:panel_height", "POST", theirs(panel_id="panel"), lambda m, t: {"height": "500"}),
    page("episodes:panel_delete", "POST", theirs(panel_id="panel")),
    page("episodes:panel_preview", "GET", theirs(panel_id="panel")),
    page("episodes:bubble_add", "POST", theirs(panel_id="panel"), lambda m, t: {"kind": "speech"}),
    page("episodes:bubble_update", "POST", theirs(bubble_id="bubble"),
         lambda m, t: {"text": "뺏기"}),
    page("episodes:bubble_delete", "POST", theirs(bubble_id="bubble")),
    page("episodes:export_item", "GET", theirs(export_id="export")),
    page("episodes:export_status", "GET", theirs(episode_id="episode")),
    page("episodes:export_image", "GET",
         lambda m, t: {"export_id": t.export.public_id, "number": 1}, label="image"),
    page("episodes:export_download", "GET",
         lambda m, t: {"export_id": t.export.public_id, "what": "zip"}, label="zip"),
    page("episodes:export_download", "GET",
         lambda m, t: {"export_id": t.export.public_id, "what": "pdf"}, label="pdf"),
    page("episodes:scene_add", "POST", theirs(scene_id="scene"), lambda m, t: {"episode": "new"}),
    page("episodes:scene_add", "POST", mine(scene_id="scene"),
         lambda m, t: {"episode": s(t.episode)}, label="own-scene-their-episode"),
]

# Pages without an id that list the caller's objects: (name, query, what B must see of B's).
LIST_PAGES: dict[str, tuple[dict, Callable[[World], str] | None]] = {
    "home": ({}, None),
    "characters:list": ({}, lambda w: w.character.name),
    "characters:new": ({}, None),
    "characters:restore": ({}, None),
    "job_list": ({}, None),
    "profile": ({}, lambda w: w.api_token.name),
    "notifications:list": ({}, lambda w: w.notification.message),
    "notifications:badge": ({}, None),
    "scenes:index": ({}, lambda w: w.character.name),
    "episodes:list": ({}, lambda w: w.episode.title),
    "episodes:scene_picker": ({}, lambda w: w.episode.title),
}
# The same pages with A's ids in the query string: still only B's objects.
LIST_QUERIES: list[tuple[str, Callable[[World], dict]]] = [
    ("scenes:index", lambda t: {"filter": s(t.character)}),
    ("scenes:index", lambda t: {"character": s(t.character)}),
    ("characters:list", lambda t: {"page": "1"}),
]

NO_OBJECT_PAGES = {
    "signup": "account creation",
    "login": "Django's login",
    "logout": "Django's logout",
    "password_change": "the caller's own password",
    "password_change_done": "static",
    "password_reset": "sends a signed link to an address",
    "password_reset_done": "static",
    "password_reset_confirm": "uidb64/token is Django's signed reset link, not an object id",
    "password_reset_complete": "static",
    "verify_email": "a signed token naming its own user and address: test_abuse.py",
    "verify_email_resend": "the caller's own pending verification",
    "media": "every stored file: test_media_is_served_to_its_owner_only",
    "episodes:create": "creates an episode of the caller's; no id",
    "notifications:mark_all_read": "the caller's own: test_mark_all_read_leaves_others_alone",
    "^api/(?P<rest>.*)$": "unknown API paths: a JSON 404",
    "favicon.ico": "a redirect to the static favicon",
}

API_CASES = [
    # jobs
    endpoint("GET", "/jobs/{id}", lambda m, t: {"id": s(t.job)}),
    endpoint("POST", "/jobs/{id}/retry", lambda m, t: {"id": s(t.job)}),
    # the wizard
    endpoint("POST", "/character/select-style",
             body=lambda m, t: {"photo_id": s(t.photo), "style_id": "original"}),
    endpoint("POST", "/character/generate-24-cuts", body=lambda m, t: {"session_id": s(t.session)}),
    endpoint("GET", "/character/generation-status/{id}", lambda m, t: {"id": s(t.cuts_job)}),
    endpoint("POST", "/character/select-cuts",
             body=lambda m, t: {"session_id": s(t.session), "selected_cut_ids": [1, 2]}),
    endpoint("POST", "/character/generate-additional",
             body=lambda m, t: {"session_id": s(t.session), "count": 1}),
    endpoint("POST", "/character/regenerate-cut",
             body=lambda m, t: {"session_id": s(t.session), "cut_id": 1}),
    endpoint("POST", "/character/prepare-training-data",
             body=lambda m, t: {"session_id": s(t.session), "character_name": "뺏은 캐릭터"}),
    endpoint("POST", "/character/start-training",
             body=lambda m, t: {"character_id": s(t.character), "confirm_cost": True}),
    endpoint("GET", "/character/training-status/{id}", lambda m, t: {"id": s(t.training_job)}),
    # My Characters
    endpoint("GET", "/character/{id}/download-backup", lambda m, t: {"id": s(t.character)}),
    endpoint("GET", "/character/{id}", lambda m, t: {"id": s(t.character)}),
    endpoint("PATCH", "/character/{id}", lambda m, t: {"id": s(t.character)},
             lambda m, t: {"name": "뺏기"}),
    endpoint("DELETE", "/character/{id}", lambda m, t: {"id": s(t.character)}),
    endpoint("POST", "/character/{id}/test-generate", lambda m, t: {"id": s(t.character)},
             lambda m, t: {"prompt": "x"}),
    endpoint("GET", "/character/{id}/gallery", lambda m, t: {"id": s(t.character)}),
    endpoint("POST", "/character/{id}/retrain", lambda m, t: {"id": s(t.character)},
             lambda m, t: {"confirm_cost": True, "cut_ids": [1]}),
    endpoint("POST", "/character/{id}/retrain", lambda m, t: {"id": s(m.character)},
             lambda m, t: {"confirm_cost": True, "photo_ids": [s(t.photo)]},
             label="own-character-their-photo"),
    # (cut_ids are numbers inside the path character's own session: scoped by the path id.)
    # scenes
    endpoint("POST", "/scene/generate-with-character",
             body=lambda m, t: {"character_id": s(t.character), "expression": "미소"}),
    endpoint("POST", "/scene/generate-two-characters",
             body=lambda m, t: {"character_a_id": s(m.character),
                                "character_b_id": s(t.character)}, label="their-b"),
    endpoint("POST", "/scene/generate-two-characters",
             body=lambda m, t: {"character_a_id": s(t.character),
                                "character_b_id": s(m.character)}, label="their-a"),
    endpoint("GET", "/scene/{id}", lambda m, t: {"id": s(t.scene)}),
    endpoint("DELETE", "/scene/{id}", lambda m, t: {"id": s(t.scene)}),
    endpoint("POST", "/scene/{id}/regenerate", lambda m, t: {"id": s(t.scene)}),
    endpoint("GET", "/scene/{id}/compare", lambda m, t: {"id": s(t.scene)}),
    endpoint("POST", "/scene/{id}/compare", lambda m, t: {"id": s(t.scene)}),
    # episodes
    endpoint("GET", "/episode/{id}", lambda m, t: {"id": s(t.episode)}),
    endpoint("PATCH", "/episode/{id}", lambda m, t: {"id": s(t.episode)},
             lambda m, t: {"title": "뺏기"}),
    endpoint("DELETE", "/episode/{id}", lambda m, t: {"id": s(t.episode)}),
    endpoint("POST", "/episode/{id}/panels/generate", lambda m, t: {"id": s(t.episode)},
             lambda m, t: {"situation": "x"}),
    endpoint("POST", "/episode/{id}/panels/generate", lambda m, t: {"id": s(m.episode)},
             lambda m, t: {"character_ids": [s(t.character)]}, label="own-episode-their-character"),
    endpoint("POST", "/episode/{id}/panels/generate", lambda m, t: {"id": s(m.episode)},
             lambda m, t: {"character_ids": [s(m.character), s(t.character)]},
             label="own-episode-their-character-b"),
    endpoint("POST", "/episode/{id}/panels/upload", lambda m, t: {"id": s(t.episode)},
             lambda m, t: upload(), multipart=True),
    endpoint("POST", "/episode/{id}/panels/from-scene", lambda m, t: {"id": s(t.episode)},
             lambda m, t: {"scene_id": s(m.scene)}),
    endpoint("POST", "/episode/{id}/panels/from-scene", lambda m, t: {"id": s(m.episode)},
             lambda m, t: {"scene_id": s(t.scene)}, label="own-episode-their-scene"),
    endpoint("PUT", "/episode/{id}/panels/order", lambda m, t: {"id": s(t.episode)},
             lambda m, t: {"panel_ids": [s(t.panel)]}),
    # Someone else's panel in my episode's order is "not every panel once": the same 422 an
    # unknown id gets (no oracle), and nothing moves.
    endpoint("PUT", "/episode/{id}/panels/order", lambda m, t: {"id": s(m.episode)},
             lambda m, t: {"panel_ids": [s(m.panel), s(t.panel)]},
             label="own-episode-their-panel-422", status=422),
    endpoint("GET", "/episode/panel/{id}", lambda m, t: {"id": s(t.panel)}),
    endpoint("PATCH", "/episode/panel/{id}", lambda m, t: {"id": s(t.panel)},
             lambda m, t: {"height": 500}),
    endpoint("DELETE", "/episode/panel/{id}", lambda m, t: {"id": s(t.panel)}),
    endpoint("POST", "/episode/panel/{id}/move", lambda m, t: {"id": s(t.panel)},
             lambda m, t: {"offset": 1}),
    endpoint("POST", "/episode/panel/{id}/bubbles", lambda m, t: {"id": s(t.panel)},
             lambda m, t: {"kind": "speech"}),
    endpoint("PATCH", "/episode/bubble/{id}", lambda m, t: {"id": s(t.bubble)},
             lambda m, t: {"text": "뺏기"}),
    endpoint("DELETE", "/episode/bubble/{id}", lambda m, t: {"id": s(t.bubble)}),
    endpoint("POST", "/episode/{id}/export", lambda m, t: {"id": s(t.episode)},
             lambda m, t: {"format": "png"}),
    endpoint("GET", "/episode/export/{id}", lambda m, t: {"id": s(t.export)}),
]

# API routes without an id in the path that list the caller's objects (query: A's ids too).
API_LISTS: dict[str, tuple[Callable[[World], dict], Callable[[World], str] | None]] = {
    "GET /api/jobs/": (lambda t: {}, lambda w: s(w.job)),
    "GET /api/character/list": (lambda t: {"page_size": 100}, lambda w: w.character.name),
    "GET /api/scene/list": (lambda t: {"character_id": s(t.character)}, None),
    "GET /api/episode/": (lambda t: {}, lambda w: w.episode.title),
    "GET /api/episode/presets": (lambda t: {}, None),
}
# The scene list without a filter must show B's scene (the filtered one above cannot).
API_LIST_EXTRA = [("GET /api/scene/list", lambda t: {}, lambda w: s(w.scene))]

NO_OBJECT_API = {
    "POST /api/jobs/image": "creates a job of the caller's from a prompt",
    "POST /api/character/upload-photo": "creates a photo of the caller's",
    "POST /api/character/restore-from-backup": "creates a character of the caller's",
    "POST /api/episode/": "creates an episode of the caller's",
    "POST /api/fal/webhook": "fal's signed callback: no user, only pokes a job to re-read fal",
    "GET /api/scene/estimate-two-characters": "prices from settings: no object of anybody's",
}


# --- enumerating the routes ----------------------------------------------------------------------
CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


def page_routes() -> dict[str, str]:
    """route key -> route template, for every non-admin, non-API URL pattern."""

    def walk(patterns, prefix="", namespace=None):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(filter(None, [namespace, p.namespace])) or None
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name
                yield namespace, name, prefix + str(p.pattern)

    found = {}
    for namespace, name, route in walk(get_resolver().url_patterns):
        if namespace and namespace.split(":")[0] in ("admin", "api"):
            continue
        found[name or route] = route
    return found


def admin_routes() -> list[tuple[str | None, str]]:
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield p.name, prefix + str(p.pattern)

    return list(walk(admin.site.urls[0], "admin/"))


ID_FIELD = re.compile(r"(^|_)(id|ids)$")
# Id fields that name shared, not owned, things.
SHARED_IDS = {
    "preset_id": "style presets are the same for everyone (a slug)",
    "style_id": "one of the built-in styles",
}


def api_operations() -> dict[str, set[str]]:
    """"METHOD /api/path/{param}" -> the names of its fields that carry an object id (path
    parameters, and query/body/form fields named *_id / *_ids)."""
    ops = {}
    for prefix, router in ninja_api._routers:
        for path, view in router.path_operations.items():
            for op in view.operations:
                template = re.sub(r"\{(?:\w+:)?(\w+)\}", r"{\1}", f"/api{prefix}{path.lstrip('/')}")
                template = template.replace("//", "/")
                ids = set()
                for model in op.signature.models:
                    source = model.__ninja_param_source__
                    for name, f in model.model_fields.items():
                        if source == "path":
                            ids.add(name)
                            continue
                        inner = getattr(f.annotation, "model_fields", None)
                        names = inner.keys() if inner else [name]
                        ids |= {n for n in names if ID_FIELD.search(n) and n not in SHARED_IDS}
                for method in op.methods:
                    ops[f"{method} {template}"] = ids
    return ops


def _normalise(key: str) -> str:
    return re.sub(r"\{\w+\}", "{}", key)


def test_every_route_is_classified_and_every_id_route_has_a_scoping_case():
    pages = page_routes()
    page_cases = {c.route for c in PAGE_CASES}
    classified = page_cases | set(LIST_PAGES) | set(NO_OBJECT_PAGES)
    unclassified_pages = sorted(set(pages) - classified)
    id_pages_without_case = sorted(
        name for name, route in pages.items()
        if CONVERTER.search(route) and name not in page_cases and name not in NO_OBJECT_PAGES
    )
    stale_pages = sorted(classified - set(pages))

    ops = api_operations()
    api_cases = {_normalise(c.route) for c in API_CASES}
    api_classified = api_cases | {_normalise(k) for k in (*API_LISTS, *NO_OBJECT_API)}
    unclassified_api = sorted(k for k in ops if _normalise(k) not in api_classified)
    id_ops_without_case = sorted(
        f"{k} (ids: {', '.join(sorted(v))})" for k, v in ops.items()
        if v and _normalise(k) not in api_cases and k not in API_LISTS
    )
    stale_api = sorted(api_classified - {_normalise(k) for k in ops})

    problems = {
        "page routes in no table (add a case to PAGE_CASES, LIST_PAGES or NO_OBJECT_PAGES)":
            unclassified_pages,
        "page routes with an id but no scoping case in PAGE_CASES": id_pages_without_case,
        "API operations in no table (add a case to API_CASES, API_LISTS or NO_OBJECT_API)":
            unclassified_api,
        "API operations with an id but no scoping case in API_CASES": id_ops_without_case,
        "table entries for routes that no longer exist": stale_pages + stale_api,
    }
    assert not any(problems.values()), "\n".join(
        f"{title}:\n  " + "\n  ".join(items) for title, items in problems.items() if items
    )


def test_the_id_detection_sees_path_query_and_body_ids():
    """A guard for the guard: the enumeration finds ids wherever they are sent."""
    ops = api_operations()
    assert ops["GET /api/character/{character_id}"] == {"character_id"}
    assert ops["POST /api/character/select-style"] == {"photo_id"}
    assert ops["POST /api/episode/{episode_id}/panels/generate"] == {"episode_id", "character_ids"}
    assert ops["GET /api/scene/list"] == {"character_id"}
    assert ops["GET /api/episode/"] == set()
    assert CONVERTER.search(page_routes()["characters:gallery_item"])


# --- B against A's objects -----------------------------------------------------------------------
def call(client: Client, case: Case, me: World, them: World, *, token: str | None = None):
    """The case's request from `me`'s side; `them` owns the objects it is pointed at."""
    path = case.url(me, them)
    data = case.data(me, them) if case.data else None
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token and case.is_api else {}
    if case.method == "GET":
        return client.get(path, data or {}, **headers)
    if not case.is_api or case.multipart:
        return client.post(path, data or {}, **headers)
    body = json.dumps(data) if data is not None else ""
    return client.generic(case.method, path, body, content_type="application/json", **headers)


ALL_CASES = PAGE_CASES + API_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_another_user_gets_404_and_nothing_changes(case, alice_world, bob_world, fal, settings):
    bob = Client()
    if not case.is_api:
        bob.force_login(bob_world.user)
    probes = leak_probes(alice_world)
    rows, files, fal_calls = db_state(), stored_state(settings), len(fal.calls)

    response = call(bob, case, bob_world, alice_world, token=bob_world.token)

    body = body_of(response)
    assert response.status_code == case.status, (response.status_code, body[:300])
    if case.is_api:
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"detail"}
    assert not [p for p in probes if p in body], "A's data in B's answer"
    assert db_state() == rows, "a row changed"
    assert stored_state(settings) == files, "a stored file changed"
    assert len(fal.calls) == fal_calls, "fal was called"

    # The control: the same request by A on A's own objects is not a 404, so the case
    # targets a real object and B's 404 is the scoping at work (not a wrong URL).
    alice = Client()
    if not case.is_api:
        alice.force_login(alice_world.user)
    mine = call(alice, case, alice_world, alice_world, token=alice_world.token)
    assert mine.status_code != 404 and mine.status_code < 500, (
        mine.status_code, body_of(mine)[:300],
    )
    if case.method == "GET" and case.status == 404:
        # B's own object through the same route: B's, and nothing of A's, on it.
        own = call(bob, case, bob_world, bob_world, token=bob_world.token)
        assert own.status_code in (200, 302)  # a notification opens its link
        assert not [p for p in probes if p in body_of(own)], "A's data on B's own page"


def test_the_change_detectors_notice_a_rename_a_new_row_and_a_new_file(alice_world, settings):
    """A guard for the guard: what "nothing changed" compares does see changes."""
    rows, files = db_state(), stored_state(settings)
    Character.objects.filter(pk=alice_world.character.pk).update(name="renamed")
    assert db_state() != rows
    rows = db_state()
    jobs.create_job(owner=alice_world.user, kind="image", calls=[], start=False)
    assert db_state() != rows
    _save(alice_world.user, "photos", "jpg", b"x")
    assert stored_state(settings) != files


# --- lists: only the caller's objects ------------------------------------------------------------
LIST_PAGE_CALLS = [(name, lambda t, q=q: q) for name, (q, _own) in LIST_PAGES.items()]
LIST_PAGE_CALLS += LIST_QUERIES


@pytest.mark.parametrize(
    ("name", "query"), LIST_PAGE_CALLS,
    ids=[f"{n}-{i}" for i, (n, _q) in enumerate(LIST_PAGE_CALLS)],
)
def test_list_pages_show_only_the_callers_objects(name, query, alice_world, bob_world):
    bob = Client()
    bob.force_login(bob_world.user)

    response = bob.get(reverse(name), query(alice_world))

    assert response.status_code == 200
    body = body_of(response).decode()
    assert A_MARK not in body
    assert not [i for i in alice_world.ids if i in body]
    own = LIST_PAGES[name][1]
    if own is not None and not query(alice_world):
        assert own(bob_world) in body  # the page does list B's own objects


API_LIST_CALLS = [(k, q, own) for k, (q, own) in API_LISTS.items()] + API_LIST_EXTRA


@pytest.mark.parametrize(
    ("route", "query", "own"), API_LIST_CALLS,
    ids=[f"{r}-{i}" for i, (r, _q, _o) in enumerate(API_LIST_CALLS)],
)
def test_api_lists_show_only_the_callers_objects(route, query, own, alice_world, bob_world):
    _method, path = route.split(" ", 1)

    response = Client().get(path, query(alice_world),
                            HTTP_AUTHORIZATION=f"Bearer {bob_world.token}")

    assert response.status_code == 200
    body = body_of(response).decode()
    assert A_MARK not in body
    assert not [i for i in alice_world.ids if i in body]
    if own is not None:
        assert own(bob_world) in body


def test_mark_all_read_leaves_others_alone(alice_world, bob_world):
    bob = Client()
    bob.force_login(bob_world.user)

    assert bob.post(reverse("notifications:mark_all_read")).status_code == 302

    alice_world.notification.refresh_from_db()
    bob_world.notification.refresh_from_db()
    assert alice_world.notification.read_at is None
    assert bob_world.notification.read_at is not None


# --- media: every file field ---------------------------------------------------------------------
FILE_FIELDS = sorted(f"{m._meta.label_lower}.{f.name}" for m, f in file_fields())
MEDIA_KINDS = [*FILE_FIELDS, "episodes.export.images"]


def test_the_world_has_a_file_in_every_file_field(alice_world):
    """A FileField added later must get a file in build_world, so its media is tested."""
    found = {label.split("#")[0] for label in owned_files(alice_world)}
    assert sorted(set(MEDIA_KINDS) - found) == []
    assert all(name.startswith(f"u/{alice_world.user.pk}/")
               for name in owned_files(alice_world).values())


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_media_is_served_to_its_owner_only(kind, alice_world, bob_world, client):
    names = sorted({n for label, n in owned_files(alice_world).items()
                    if label.split("#")[0] == kind})
    assert names
    bob = Client()
    bob.force_login(bob_world.user)
    alice = Client()
    alice.force_login(alice_world.user)
    for name in names:
        with default_storage.open(name, "rb") as fh:
            data = fh.read()
        url = f"/media/{name}"

        stranger, anonymous, owner = bob.get(url), client.get(url), alice.get(url)

        assert stranger.status_code == 404
        assert anonymous.status_code in (302, 404)
        if anonymous.status_code == 302:
            assert anonymous["Location"].startswith(reverse("login"))
        for response in (stranger, anonymous):
            assert data[:64] not in body_of(response)
        assert owner.status_code == 200
        assert body_of(owner) == data


@pytest.mark.parametrize(
    "trick",
    ["u/{b}/../{a}/{rest}", "u/{b}/./../{a}/{rest}", "u/{b}//../{a}/{rest}", "u/{a}0/{rest}",
     "u/{a}/{rest}%00", "./u/{a}/{rest}", "/u/{a}/{rest}"],
)
def test_media_path_tricks_do_not_reach_another_users_file(trick, alice_world, bob_world):
    name = alice_world.character.lora_file.name
    rest = name.split("/", 2)[2]
    bob = Client()
    bob.force_login(bob_world.user)
    path = trick.format(a=alice_world.user.pk, b=bob_world.user.pk, rest=rest)

    response = bob.get(f"/media/{path}")

    assert response.status_code == 404
    with default_storage.open(name, "rb") as fh:
        assert fh.read()[:64] not in body_of(response)


# --- the back office -----------------------------------------------------------------------------
def _admin_url(name: str | None, route: str, world: World) -> str:
    """A concrete URL for an admin route, with A's real object where it takes one."""
    parts = route.split("/")
    obj = None
    if len(parts) > 3 and parts[1] != "r":
        try:
            model = apps.get_model(parts[1], parts[2])
        except (LookupError, ValueError):
            model = None
        if model is not None:
            obj = model.objects.order_by("-pk").first()
    values = {
        "object_id": str(obj.pk) if obj is not None else "1",
        "id": str(world.user.pk),
        "pk": str(world.character.pk),
        "name": world.photo.image.name if "thumb" in route else "01.jpg",
        "content_type_id": str(ContentType.objects.get_for_model(Character).pk),
        "url": "no/such/page/",
        "app_label": "characters",
    }
    if "(?P<" in route:
        if name is None:
            return "/admin/no/such/page/"
        return reverse(f"admin:{name}", kwargs={"app_label": "characters"})
    filled = CONVERTER.sub(lambda m: values[m.group("name")], route)
    return "/" + filled


def _admin_targets(world: World) -> list[tuple[str, str]]:
    return [(name or route, _admin_url(name, route, world)) for name, route in admin_routes()
            if name != "login"]


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_every_admin_url_sends_non_staff_to_the_admin_login(who, alice_world, bob_world):
    client = Client()
    if who == "user":
        client.force_login(bob_world.user)
    probes = leak_probes(alice_world)
    refused = []
    for route, url in _admin_targets(alice_world):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            expected = "/admin/" if route == "logout" else "/admin/login/"
            if response.status_code != 302 or not response["Location"].startswith(expected):
                refused.append(f"{method.upper()} {url}: {response.status_code}")
            elif [p for p in probes if p in body_of(response)]:
                refused.append(f"{method.upper()} {url}: A's data in the redirect")
    assert refused == []


def test_admin_enumeration_covers_every_registered_model_and_the_back_office_views(alice_world):
    targets = {route for route, _url in _admin_targets(alice_world)}
    for model in admin.site._registry:
        opts = model._meta
        for view in ("changelist", "change", "delete", "history"):
            assert f"{opts.app_label}_{opts.model_name}_{view}" in targets
    assert {"jobs_job_failures", "jobs_job_spend", "thumbnail",
            "characters_character_training_image"} <= targets


def test_support_group_cannot_purge(alice_world):
    ensure_support_group()
    staff = get_user_model().objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    staff.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    support = Client()
    support.force_login(staff)
    character = alice_world.character
    management.delete_character(owner=alice_world.user, character_id=character.public_id)
    url = "/admin/characters/character/"

    changelist = support.get(url).content.decode()
    support.post(url, {"action": "purge_now", "_selected_action": [character.pk], "post": "yes"})
    delete = support.post(f"{url}{character.pk}/delete/", {"post": "yes"})

    assert 'value="purge_now"' not in changelist
    assert delete.status_code == 403
    assert Character.objects.filter(pk=character.pk).exists()
    assert default_storage.exists(character.lora_file.name)


def test_staff_without_the_support_permission_cannot_read_users_files(alice_world):
    """is_staff opens the admin, not other people's photos (issue 18)."""
    staff = get_user_model().objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    name = alice_world.photo.image.name

    assert client.get(f"/media/{name}").status_code == 404
    assert client.get(f"/admin/jobs/job/thumb/{name}").status_code in (403, 404)


def test_support_staff_may_read_anyones_file_for_the_back_office(alice_world):
    """The other side of the rule: support staff see every file (thumbnails, the full file)."""
    ensure_support_group()
    staff = get_user_model().objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    staff.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    support = Client()
    support.force_login(staff)
    name = alice_world.photo.image.name

    assert support.get(f"/media/{name}").status_code == 200
    thumb = support.get(f"/admin/jobs/job/thumb/{name}")
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
