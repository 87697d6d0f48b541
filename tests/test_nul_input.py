"""A NUL character in any input is refused clearly (PostgreSQL text cannot hold one: without
this it was a 500 there, found by the API fuzz)."""

import pytest

from episodes.models import Episode
from scenes.models import Scene

pytestmark = pytest.mark.django_db


def test_api_json_body_with_nul_is_422_and_creates_nothing(alice_client):
    response = alice_client.post(
        "/api/episode/", {"title": "세금\x00이야기"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json() == {"detail": "입력에 허용되지 않는 문자(NUL)가 있습니다."}
    assert Episode.objects.count() == 0


def test_api_query_string_with_nul_is_422(alice_client):
    response = alice_client.get("/api/scene/list", {"character_id": "a\x00b"})
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]


def test_page_form_with_nul_is_a_readable_400_and_creates_nothing(alice_client):
    response = alice_client.post("/scenes/one/", {"situation": "사무실\x00"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert Scene.objects.count() == 0


def test_a_form_that_cannot_be_parsed_is_left_to_the_api_not_turned_into_an_html_400(
    alice_client,
):
    # multipart without a boundary: the middleware cannot read it and must not answer for it.
    response = alice_client.generic(
        "POST", "/api/jobs/image", b'{"prompt": "0"}', content_type="multipart/form-data"
    )
    assert response["Content-Type"].startswith("application/json")
    assert response.status_code < 500
