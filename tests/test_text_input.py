"""One cleaning for every text field (issue 18, webtoon/text.py): invisible-only names are
refused, invisible formatting characters (zero-width, BOM, bidi overrides) removed, "\\r\\n"
normalised, in API bodies, page forms and restored metadata.json alike; control characters
in metadata.json are a 422 like NUL anywhere else."""

import json

import pytest

from characters.models import Character
from episodes.models import Episode
from tests.characters.factories import trained_character
from tests.characters.test_backup import entries, make_zip, metadata, restore
from webtoon.text import clean_text, has_control

pytestmark = pytest.mark.django_db

INVISIBLE_ONLY = ["\u200b", "\ufeff", "\u202e", "\u200b\u200d \u2060", "\u2066\u2069"]


@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_invisible_only_text_cleans_to_empty(text):
    assert clean_text(text) == ""


def test_cleaning_keeps_visible_text_and_emoji_joiners():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_text("박\u200b사장\u202e") == "박사장"
    assert clean_text(f"가족 {family}") == f"가족 {family}"
    assert clean_text("첫 줄\r\n둘째 줄\r셋째") == "첫 줄\n둘째 줄\n셋째"


def test_control_characters_are_detected_but_tab_and_newlines_are_text():
    assert has_control("a\x07b") and has_control("\x1b[31m") and has_control("\x00")
    assert not has_control("a\tb\nc\r\n")


# --- the API --------------------------------------------------------------------------------
@pytest.mark.parametrize("title", INVISIBLE_ONLY)
def test_api_episode_title_that_is_only_invisible_is_refused(alice_client, title):
    response = alice_client.post("/api/episode/", {"title": title}, content_type="application/json")
    assert response.status_code == 422
    assert Episode.objects.count() == 0


def test_api_character_rename_to_invisible_only_is_refused(alice_client, user):
    character = trained_character(user)
    url = f"/api/character/{character.public_id}"
    response = alice_client.patch(url, {"name": "\u200b\u202e"}, content_type="application/json")
    assert response.status_code == 422
    character.refresh_from_db()
    assert character.name.strip() and "\u200b" not in character.name


def test_api_text_loses_bidi_overrides_and_zero_width_characters(alice_client, user):
    character = trained_character(user)
    url = f"/api/character/{character.public_id}"
    response = alice_client.patch(
        url, {"name": "\ufeff김\u200b대리\u202e"}, content_type="application/json"
    )
    assert response.status_code == 200
    character.refresh_from_db()
    assert character.name == "김대리"


# --- page forms -----------------------------------------------------------------------------
def test_page_form_is_cleaned_the_same_way(alice_client):
    alice_client.post("/episodes/new/", {"title": "\u200b\u202e"})
    assert Episode.objects.count() == 0
    alice_client.post("/episodes/new/", {"title": "세금\u200b 이야기\u202e"})
    assert Episode.objects.get().title == "세금 이야기"


def test_passwords_are_never_rewritten(client, db):
    from django.contrib.auth import get_user_model

    password = "zw\u200bpass-Word-9!"
    client.post(
        "/accounts/signup/",
        {"username": "zw", "password1": password, "password2": password},
    )
    assert get_user_model().objects.get(username="zw").check_password(password)


# --- restore --------------------------------------------------------------------------------
def backup_with(**changes) -> bytes:
    files = entries({"metadata.json": json.dumps(metadata(**changes)).encode()})
    return make_zip(files)


@pytest.mark.parametrize(
    "field,value",
    [
        ("character_name", "박\x00사장"),
        ("character_name", "박\x07사장"),
        ("custom_prompt", "office\x1b[31m"),
        ("reference_captions", ["ok", "bad\x00"]),
    ],
)
def test_restore_refuses_control_characters_in_metadata_with_422(alice_client, field, value):
    response = restore(alice_client, backup_with(**{field: value}))
    assert response.status_code == 422
    assert "제어 문자" in response.json()["detail"]
    assert Character.objects.count() == 0


@pytest.mark.parametrize("name", INVISIBLE_ONLY)
def test_restore_refuses_an_invisible_only_name(alice_client, name):
    response = restore(alice_client, backup_with(character_name=name))
    assert response.status_code == 422
    assert "character_name" in response.json()["detail"]
    assert Character.objects.count() == 0


def test_restore_cleans_names_and_normalises_line_ends(alice_client):
    response = restore(
        alice_client,
        backup_with(character_name="\ufeff박\u200b사장\u202e", custom_prompt="줄 하나\r\n줄 둘"),
    )
    assert response.status_code == 201, response.content
    character = Character.objects.get()
    assert character.name == "박사장"
    assert character.custom_prompt == "줄 하나\n줄 둘"
