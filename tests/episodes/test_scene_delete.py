"""Deleting a gallery scene never takes the picture away from an episode panel (issue 18):
each panel showing it gets its own copy first, so no stored file has two owners."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from episodes import services
from episodes.models import Panel
from scenes.models import Scene
from tests.episodes.helpers import episode, picture, seed_presets

pytestmark = [pytest.mark.django_db, pytest.mark.storage]


@pytest.fixture(autouse=True)
def _presets():
    seed_presets()


def gallery_scene(user) -> Scene:
    name = default_storage.save(f"u/{user.pk}/scenes/s.png", ContentFile(picture()))
    return Scene.objects.create(
        owner=user, mode="prompt", prompt="x", image_size="square", steps=28, image=name
    )


def test_deleting_a_scene_keeps_the_picture_of_the_panels_that_show_it(alice_client, user):
    ep = episode(user)
    scene = gallery_scene(user)
    first = services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    second = services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    scene_file = scene.image.name

    response = alice_client.delete(f"/api/scene/{scene.public_id}")

    assert response.status_code == 204
    assert not Scene.objects.exists()
    assert not default_storage.exists(scene_file)  # the gallery's own file is gone
    first, second = Panel.objects.get(pk=first.pk), Panel.objects.get(pk=second.pk)
    assert services.panel_status(first) == services.panel_status(second) == "ready"
    assert first.image.name != second.image.name  # one file per panel, none shared
    for panel in (first, second):
        assert panel.image.name.startswith(f"u/{user.pk}/episodes/panels/")
        with default_storage.open(panel.image.name, "rb") as fh:
            assert fh.read() == picture()


def test_the_episode_still_exports_after_its_scene_was_deleted(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    scene = gallery_scene(user)
    services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    alice_client.delete(f"/api/scene/{scene.public_id}")

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/api/episode/{ep.public_id}/export", {"format": "png"},
            content_type="application/json",
        )
    assert response.status_code == 202
    export = alice_client.get(f"/api/episode/export/{response.json()['export_id']}").json()
    assert export["state"] == "succeeded"


def test_deleting_the_panel_later_removes_only_its_own_copy(
    alice_client, user, django_capture_on_commit_callbacks
):
    ep = episode(user)
    scene = gallery_scene(user)
    a = services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    b = services.add_scene_panel(owner=user, episode_id=ep.public_id, scene_id=scene.public_id)
    alice_client.delete(f"/api/scene/{scene.public_id}")
    a, b = Panel.objects.get(pk=a.pk), Panel.objects.get(pk=b.pk)

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_panel(owner=user, panel_id=a.public_id)

    assert not default_storage.exists(a.image.name)
    assert default_storage.exists(b.image.name)
