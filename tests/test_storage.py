"""Media storage end to end (issue 18): uploads, cuts, the training ZIP, the LoRA, samples,
the backup stream, restore, episode exports, presigned redirects, scene deletion and purge,
each ending with "every stored object referenced, every reference stored".

Marked `storage`: on the default passes they run on a fresh local folder; `make
test-storage` (WEBTOON_TEST_S3=1, the suite's third pass) runs them again with media on a
real S3 server, SeaweedFS, in a fresh bucket per test (tests/conftest.py)."""

import io
import zipfile

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile

from characters import management
from characters.models import Character, Cut, Photo
from episodes import services as episodes
from episodes.models import Export, Panel
from scenes.models import Scene
from tests.characters.test_backup import local_backups, trained  # noqa: F401 - fixtures
from tests.conftest import jpeg_bytes
from tests.episodes.helpers import episode, picture, seed_presets, upload
from webtoon.testing.storage_audit import audit

pytestmark = [pytest.mark.django_db, pytest.mark.storage]


@pytest.fixture(autouse=True)
def _small_sessions(settings):
    settings.MIN_SELECTED_CUTS = 1  # the fixtures' sessions have 4 cuts


def assert_consistent() -> set[str]:
    stored, unreferenced, missing = audit()
    assert not unreferenced, f"stored but no row refers to them: {sorted(unreferenced)[:5]}"
    assert not missing, f"rows whose object is missing: {sorted(missing)[:5]}"
    return stored


def read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def fetch_media(client, name: str) -> bytes:
    """What a browser gets for /media/<name>: the file, or on S3 a redirect to a presigned
    URL of the bucket that serves it."""
    response = client.get(f"/media/{name}")
    if django_settings.AWS_STORAGE_BUCKET_NAME:
        assert response.status_code == 302
        location = response["Location"]
        assert "X-Amz-Signature=" in location or "Signature=" in location
        fetched = httpx.get(location, timeout=10)
        assert fetched.status_code == 200
        return fetched.content
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_storage_mode_is_what_the_pass_asked_for(_media_storage):
    on_s3 = bool(django_settings.AWS_STORAGE_BUCKET_NAME)
    assert (_media_storage == "s3") == on_s3
    backend = type(storages["default"]).__name__
    assert backend == ("S3Storage" if on_s3 else "FileSystemStorage")


def test_photo_upload_is_stored_and_served_to_its_owner_only(alice_client, client, other_user):
    photo = SimpleUploadedFile("me.jpg", jpeg_bytes(), content_type="image/jpeg")
    response = alice_client.post(
        "/api/character/upload-photo", {"consent": "true", "photo": photo}
    )
    assert response.status_code == 201, response.content
    name = Photo.objects.get().image.name

    assert fetch_media(alice_client, name) == read(name)
    client.force_login(other_user)
    assert client.get(f"/media/{name}").status_code == 404
    assert assert_consistent() == {name}


def test_cuts_zip_lora_and_samples_are_stored(user, trained):  # noqa: F811
    character = Character.objects.get(pk=trained.pk)
    names = {character.lora_file.name, character.training_data.name}
    names |= {s.image.name for s in character.samples.all()}
    cuts = set(
        Cut.objects.filter(session__owner=user).exclude(image="").values_list("image", flat=True)
    )
    assert len(cuts) == 4
    names |= cuts
    stored = assert_consistent()
    assert names <= stored
    with zipfile.ZipFile(io.BytesIO(read(character.training_data.name))) as zf:
        assert any(n.endswith(".txt") for n in zf.namelist())


def test_backup_stream_then_restore_round_trip(alice_client, trained):  # noqa: F811
    response = alice_client.get(f"/api/character/{trained.public_id}/download-backup")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("lora_weights.safetensors") == read(trained.lora_file.name)

    restored = alice_client.post(
        "/api/character/restore-from-backup",
        {
            "backup": SimpleUploadedFile("b.zip", data, content_type="application/zip"),
            "on_conflict": "keep_both",  # the original still holds the word (issue 15)
        },
    )

    assert restored.status_code == 201, restored.content
    copy = Character.objects.get(public_id=restored.json()["character_id"])
    assert copy.lora_file.name != trained.lora_file.name
    assert read(copy.lora_file.name) == read(trained.lora_file.name)
    assert fetch_media(alice_client, copy.samples.first().image.name)
    assert_consistent()


def test_purge_deletes_every_object_of_the_character(user, trained):  # noqa: F811
    files = management.character_files(trained)
    assert files and all(default_storage.exists(n) for n in files)
    management.delete_character(owner=user, character_id=trained.public_id)

    management.purge_character(Character.objects.get(pk=trained.pk))

    assert not any(default_storage.exists(n) for n in files)
    assert_consistent()


def test_episode_export_is_stored_and_downloadable(
    alice_client, user, django_capture_on_commit_callbacks
):
    seed_presets()
    ep = episode(user)
    for color in ((200, 100, 50), (50, 100, 200)):
        episodes.upload_panel(owner=user, episode_id=ep.public_id, upload=upload(color=color))
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/api/episode/{ep.public_id}/export", {"format": "png"},
            content_type="application/json",
        )
    assert response.status_code == 202
    export = Export.objects.get()
    assert export.state == Export.State.SUCCEEDED, export.error
    names = [i["name"] for i in export.images if i.get("name")]
    assert names and all(default_storage.exists(n) for n in names)
    zipped = fetch_media(alice_client, export.zip_file.name)
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        assert len(zf.namelist()) >= len(names)
    assert_consistent()


def test_deleting_a_scene_copies_its_picture_for_the_panel(alice_client, user):
    seed_presets()
    ep = episode(user)
    name = default_storage.save(f"u/{user.pk}/scenes/s.png", ContentFile(picture()))
    scene = Scene.objects.create(
        owner=user, mode="prompt", prompt="x", image_size="square", steps=28, image=name
    )
    panel = episodes.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)

    assert alice_client.delete(f"/api/scene/{scene.public_id}").status_code == 204

    panel = Panel.objects.get(pk=panel.pk)
    assert not default_storage.exists(name)
    assert read(panel.image.name) == picture()
    assert_consistent()


def test_a_call_that_fails_after_a_killed_store_leaves_no_object(user, fal):
    """Found by `make soak-cluster`: a pass stored a call's output, was killed before its
    transaction committed, and the call then failed (its deadline passed): the object was
    left with no row. A call that ends without output removes its per-attempt objects."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from webtoon.jobs import services as jobs

    fal.queue_polls = 10_000  # still at fal when the deadline passes
    job = jobs.create_image_job(user, "a cat")
    jobs.advance_job(job.pk)
    call = job.calls.get()
    call.refresh_from_db()
    left = default_storage.save(
        f"u/{user.pk}/jobs/{job.public_id}/{call.pk}-{call.attempts}.png", ContentFile(b"x")
    )
    assert left.endswith(f"/{call.pk}-{call.attempts}.png")

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        job = jobs.advance_job(job.pk)

    assert job.calls.get().state == "failed"
    assert not default_storage.exists(left)
    assert_consistent()
