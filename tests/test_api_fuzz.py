"""Schemathesis fuzz of every /api/ operation (issue 8), in-process through the WSGI app.

A normal (non-staff) user with a Bearer token owns one of everything: a photo, a fresh
session, a session with its 24 cuts, a draft and two trained characters, a finished and a
failed job, a scene, and an episode with a panel, a bubble and an export, all under fixed
public ids. Well-formed ids in generated requests are often swapped for those, so requests
reach real objects and not only the 404 path. Every response must be: not a 5xx, of a
documented status, content type and body, and every 4xx/5xx exactly {"detail": "<text>"}.

Bounded and deterministic: Schemathesis' coverage phase (fixed boundary and negative cases,
unexpected methods) plus EXAMPLES generated cases per operation, COSTLY_EXAMPLES for those
that start paid work (the suite's inline queue and offline backend run that work inside the
request); derandomized, no example database. Run alone with `pytest -m fuzz`.
"""

import shutil
import zlib
from importlib import import_module
from unittest import mock
from uuid import UUID

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from ninja import Schema
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webtoon.accounts.models import ApiToken, hash_token
from webtoon.jobs.models import Job

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = 20
COSTLY_EXAMPLES = 6
# Operations that start paid work (run inline here) or rebuild files: fewer examples.
COSTLY = (
    r"/(generate-24-cuts|generate-additional|regenerate-cut|start-training|retrain"
    r"|test-generate|generate-with-character|generate-two-characters|regenerate"
    r"|panels/generate|export|image|retry|restore-from-backup|prepare-training-data)$"
)

TOKEN = "wt_fuzz-token-for-the-schemathesis-run-000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _uuid(n: int) -> str:
    return str(UUID(int=n))


PHOTO, SESSION_NEW, SESSION_CUTS = _uuid(0x101), _uuid(0x201), _uuid(0x202)
CHARACTER, OTHER_CHARACTER, DRAFT = _uuid(0x301), _uuid(0x302), _uuid(0x303)
JOB_CUTS, JOB_FAILED = _uuid(0x401), _uuid(0x402)
SCENE = _uuid(0x501)
EPISODE, PANEL, BUBBLE, EXPORT = _uuid(0x601), _uuid(0x602), _uuid(0x603), _uuid(0x604)

# Values that reach the seeded objects (or pass a domain rule), by parameter or field name.
KNOWN = {
    "photo_id": [PHOTO],
    "session_id": [SESSION_NEW, SESSION_CUTS],
    "character_id": [CHARACTER, OTHER_CHARACTER, DRAFT],
    "character_a_id": [CHARACTER],
    "character_b_id": [OTHER_CHARACTER],
    "job_id": [JOB_CUTS, JOB_FAILED],
    "task_id": [JOB_CUTS, JOB_FAILED],
    "scene_id": [SCENE],
    "episode_id": [EPISODE],
    "panel_id": [PANEL],
    "bubble_id": [BUBBLE],
    "export_id": [EXPORT],
    "cut_id": [1, 24],
    "preset_id": ["webtoon-color"],
    "image_size": ["square_hd", "portrait_4_3", "landscape_16_9"],
    "consent": [True],
    "photo_ids": [[PHOTO]],
    "character_ids": [[CHARACTER], [CHARACTER, OTHER_CHARACTER]],
    "panel_ids": [[PANEL]],
    "selected_cut_ids": [list(range(1, 21))],
    "cut_ids": [[1, 2, 3]],
}

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 8,
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        "operations": [
            {"include-path-regex": COSTLY, "generation": {"max-examples": COSTLY_EXAMPLES}},
        ],
    }
)
APP = get_wsgi_application()
# Loading it is the first check: openapi.json must be a schema Schemathesis can use.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", APP, config=CONFIG)


def _well_formed(name: str, value) -> bool:
    """Whether `value` has the type of the seeded values for `name`; malformed values are
    the fuzzer's negative cases and stay as they are."""
    sample = KNOWN[name][0]
    if name.endswith("_id") and name not in ("preset_id", "cut_id"):
        try:
            UUID(str(value))
        except ValueError:
            return False
        return isinstance(value, str)
    return type(value) is type(sample)


def reach_seeded_objects(case) -> None:
    """Swap well-formed ids (and a few values a domain rule checks) for seeded ones, chosen
    by a hash of the case: deterministic, the same when Hypothesis replays a case, and in
    every phase (coverage cases get no strategy hooks). About one value in n+1 is kept as
    generated: an id of nobody's, the 404 path."""
    salt = repr((case.path_parameters, case.query, case.body))

    def swap(values: dict) -> None:
        for name, value in values.items():
            if name in KNOWN and _well_formed(name, value):
                choices = [value, *KNOWN[name]]
                values[name] = choices[zlib.crc32(f"{salt}|{name}".encode()) % len(choices)]

    if case.path_parameters:
        swap(case.path_parameters)
    if isinstance(case.body, dict):
        swap(case.body)


def detail_shape(ctx, response, case):
    """Every error is exactly {"detail": "<non-empty string>"}."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict) and set(body) == {"detail"}, f"not a detail body: {body!r}"
    assert isinstance(body["detail"], str) and body["detail"], f"empty detail: {body!r}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    # The backup ZIP is documented as application/zip binary: only JSON bodies are checked.
    response_schema_conformance,
    detail_shape,
]


def _set_public_id(obj, public_id: str) -> None:
    type(obj).objects.filter(pk=obj.pk).update(public_id=public_id)


def _seed():
    """One of everything, owned by the fuzz user; returns the user."""
    from characters import generation, training
    from episodes import services as episodes
    from scenes import services as scenes
    from tests.characters.factories import trained_character
    from tests.characters.test_curation import astronaut_photo
    from tests.episodes.helpers import upload
    from webtoon.jobs import services as jobs

    owner = get_user_model().objects.create_user("fuzz", "fuzz@example.com", "pw-fuzz-123")
    ApiToken.objects.create(
        user=owner, name="fuzz", prefix=TOKEN[:10], token_hash=hash_token(TOKEN)
    )
    _set_public_id(astronaut_photo(owner), PHOTO)
    for public_id in (SESSION_NEW, SESSION_CUTS):
        session = generation.select_style(
            owner=owner, photo_id=PHOTO, style_id="original", custom_prompt=None
        )
        _set_public_id(session, public_id)
    # Committed, so the inline queue runs it: 24 real cuts through the offline backend. The
    # identity check (dlib, about half a second a cut) is left out: no API answer needs it.
    with mock.patch("characters.checks.request_check"):
        _set_public_id(generation.start_generation(owner=owner, session_id=SESSION_CUTS), JOB_CUTS)
    # The checks were left out, so none is running: packaging may go ahead (issue 15).
    from characters.models import Cut

    Cut.objects.filter(session__public_id=SESSION_CUTS).update(quality_ok=True)
    draft = training.prepare_training_data(
        owner=owner, session_id=SESSION_CUTS, character_name="초안"
    )
    _set_public_id(draft, DRAFT)
    # Never run: marked failed, so a retry has something to do.
    failed = jobs.create_image_job(owner, "office", "square_hd")
    Job.objects.filter(pk=failed.pk).update(state="failed", public_id=JOB_FAILED)

    _set_public_id(trained_character(owner), CHARACTER)
    _set_public_id(trained_character(owner, name="김대리"), OTHER_CHARACTER)
    scene = scenes.generate_with_character(
        owner=owner, character_id=CHARACTER, scale=None, expression="웃음",
        location="사무실", situation="", image_size=scenes.ONE_SIZE,
    )
    _set_public_id(scene, SCENE)

    episode = episodes.create_episode(owner=owner, title="1화", preset_id=None)
    _set_public_id(episode, EPISODE)
    panel = episodes.upload_panel(owner=owner, episode_id=EPISODE, upload=upload())
    _set_public_id(panel, PANEL)
    bubble = episodes.add_bubble(owner=owner, panel_id=PANEL, kind="speech", text="안녕")
    _set_public_id(bubble, BUBBLE)
    _set_public_id(episodes.request_export(owner=owner, episode_id=EPISODE), EXPORT)
    return owner


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seeded once and committed (the pipeline is too slow to run per operation); each test
    runs in a transaction on top of it that is rolled back. Returns a copy of the media
    files as seeded."""
    with django_db_blocker.unblock():
        owner = _seed()
        media = tmp_path_factory.mktemp("fuzz-media")
        shutil.copytree(django_settings.MEDIA_ROOT, media, dirs_exist_ok=True)
        try:
            yield media
        finally:
            owner.delete()


@pytest.fixture
def seeded_files(seeded):
    """Deleting a scene or an episode removes its files (at once, or on the commit the test
    runs): the rows come back with the rollback, and so do the files."""
    yield
    shutil.copytree(seeded, django_settings.MEDIA_ROOT, dirs_exist_ok=True)


@pytest.fixture
def fal_keys(monkeypatch):
    """A key of our own as fal's: nothing is fetched, and fuzzed signatures are checked
    against a real key (and refused)."""
    from tests.test_webhooks import jwk
    from webtoon.imaging import webhooks

    key = jwk(Ed25519PrivateKey.generate())
    monkeypatch.setattr(webhooks, "jwks_keys", lambda: [key])


@pytest.fixture
def wsgi_in_test_transaction():
    """What Django's test client does too: the WSGI handler's signals would otherwise close
    the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_fuzz(
    case, seeded_files, db, fal_keys, wsgi_in_test_transaction, django_capture_on_commit_callbacks
):
    reach_seeded_objects(case)
    # Work queued after commit (inline in the suite) runs as it would after a real commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = case.call(headers=AUTH)
    case.validate_response(response, checks=CHECKS)


def test_every_operation_in_openapi_json_loads():
    labels = [result.ok().label for result in schema.get_all_operations()]
    assert len(labels) == len(set(labels)) >= 49


def test_schema_names_are_unique_across_routers():
    """ninja names a component after its class: two routers' `GenerateIn` became one schema
    in openapi.json, and /generate-24-cuts was documented with the episode panel body."""
    modules = [
        "webtoon.schemas", "webtoon.jobs.api", "characters.api", "characters.schemas",
        "characters.generation_api", "characters.curation_api", "characters.training_api",
        "characters.backup_api", "characters.manage_api", "scenes.api", "episodes.api",
    ]
    seen: dict[str, str] = {}
    for module in modules:
        for obj in vars(import_module(module)).values():
            if isinstance(obj, type) and issubclass(obj, Schema) and obj.__module__ == module:
                assert obj.__name__ not in seen, (obj.__name__, seen.get(obj.__name__), module)
                seen[obj.__name__] = module


# --- what the fuzz found, pinned ------------------------------------------------------------
def test_a_method_the_path_does_not_have_is_a_json_405(user):
    response = Client().put("/api/jobs/", "{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json() == {"detail": "허용되지 않는 요청 방식입니다."}
    assert response["Allow"] == "GET"


def test_a_body_that_is_not_json_is_a_422(user):
    from webtoon.accounts.services import create_api_token

    _, raw = create_api_token(user=user, name="script")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = Client().post("/api/episode/", b"\xff{", content_type="application/json", **headers)
    assert response.status_code == 422
    assert response.json() == {"detail": "요청 본문을 읽을 수 없습니다. 올바른 JSON을 보내주세요."}
    response = Client().post("/api/episode/", '"AAA"', content_type="application/json", **headers)
    assert response.status_code == 422
    assert response.json() == {"detail": "요청 본문은 JSON 객체여야 합니다."}
