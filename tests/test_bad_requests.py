"""Input Django refuses to read never becomes a 500, an HTML page on the API, or a misleading
answer (issue 18): oversized bodies are 413, too many fields 400, all as {"detail"}; the fal
webhook checks its headers before it fetches keys; admin parameters of any length are 400."""

import json

import httpx
import pytest
import respx
from django.contrib.auth import get_user_model
from django.core.cache import cache

from webtoon.imaging import webhooks

pytestmark = pytest.mark.django_db

JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"


@pytest.fixture(autouse=True)
def no_cached_keys(settings):
    settings.FAL_WEBHOOK_JWKS_URLS = [JWKS_URL]  # one URL: these tests count its fetches
    cache.delete(webhooks.JWKS_CACHE_KEY)
    cache.delete(webhooks.JWKS_FAILED_CACHE_KEY)


# --- bodies over DATA_UPLOAD_MAX_MEMORY_SIZE ------------------------------------------------
def test_api_json_body_over_the_limit_is_413_json(alice_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"title": "가" * 2000})
    response = alice_client.post("/api/episode/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "요청이 너무 큽니다."}


def test_webhook_body_over_the_limit_is_413_json(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"request_id": "r", "status": "OK", "payload": {"x": "a" * 5000}})
    response = client.post("/api/fal/webhook", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "요청이 너무 큽니다."}


def test_api_form_over_the_limit_is_413_json(alice_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = alice_client.post(
        "/api/character/upload-photo",
        "consent=true&x=" + "a" * 5000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "요청이 너무 큽니다."


# --- too many fields / parameters -----------------------------------------------------------
def test_api_query_with_too_many_parameters_is_json_400(alice_client):
    query = "&".join(f"p{i}=1" for i in range(1200))
    response = alice_client.get(f"/api/scene/list?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "너무 많" in response.json()["detail"]


def test_api_form_with_too_many_fields_is_json_400_not_consent_required(alice_client):
    fields = "&".join(f"f{i}=1" for i in range(1200))
    response = alice_client.post(
        "/api/character/upload-photo",
        "consent=true&" + fields,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "동의" not in response.json()["detail"]


def test_api_disallowed_host_is_json_400(alice_client):
    # DisallowedHost (a SuspiciousOperation) is raised in middleware, before the API runs.
    response = alice_client.get("/api/scene/list", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_page_with_too_many_parameters_is_a_readable_400(alice_client):
    query = "&".join(f"p{i}=1" for i in range(1200))
    response = alice_client.get(f"/scenes/?{query}")
    assert response.status_code == 400
    assert "너무 많" in response.content.decode()


# --- the fal webhook ------------------------------------------------------------------------
def test_webhook_without_signature_headers_fetches_no_keys(client):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(JWKS_URL).respond(200, json={"keys": []})
        for _ in range(3):
            response = client.post(
                "/api/fal/webhook", {"request_id": "r"}, content_type="application/json"
            )
            assert response.status_code == 400
    assert not route.called


@pytest.mark.parametrize("digits", [13, 5000])
def test_webhook_timestamp_of_any_length_is_400(client, digits):
    headers = {
        "X-Fal-Webhook-Request-Id": "r",
        "X-Fal-Webhook-User-Id": "u",
        "X-Fal-Webhook-Timestamp": "9" * digits,
        "X-Fal-Webhook-Signature": "ab" * 64,
    }
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(JWKS_URL).respond(200, json={"keys": []})
        response = client.post(
            "/api/fal/webhook", {"request_id": "r"}, content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 400
    assert not route.called


def test_webhook_timestamp_of_5000_digits_is_refused_by_the_signature_check():
    headers = {
        "x-fal-webhook-request-id": "r",
        "x-fal-webhook-user-id": "u",
        "x-fal-webhook-timestamp": "9" * 5000,
        "x-fal-webhook-signature": "ab" * 64,
    }
    assert webhooks.verify_signature(headers, b"{}", [{"kty": "OKP"}]) is False


def test_failed_key_fetch_is_cached_briefly():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(JWKS_URL).mock(side_effect=httpx.ConnectTimeout("down"))
        assert webhooks.jwks_keys() == []
        assert webhooks.jwks_keys() == []
    assert route.call_count == 1
    assert cache.get(webhooks.JWKS_FAILED_CACHE_KEY)


def test_key_fetch_is_tried_again_after_the_failure_expires():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(JWKS_URL).respond(500)
        assert webhooks.jwks_keys() == []
        cache.delete(webhooks.JWKS_FAILED_CACHE_KEY)  # the brief memory ran out
        assert webhooks.jwks_keys() == []
    assert route.call_count == 2


# --- admin parameters -----------------------------------------------------------------------
@pytest.fixture
def admin_client(client, db):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    return client


def test_admin_spend_with_a_5000_digit_user_is_400(admin_client):
    response = admin_client.get("/admin/jobs/job/spend/", {"user": "9" * 5000})
    assert response.status_code == 400


def test_admin_spend_with_a_huge_user_id_is_400(admin_client):
    response = admin_client.get("/admin/jobs/job/spend/", {"user": "9" * 30})
    assert response.status_code == 400


def test_admin_thumbnail_with_a_5000_digit_width_is_400(admin_client, user):
    name = f"u/{user.pk}/photos/x.jpg"
    response = admin_client.get(f"/admin/jobs/job/thumb/{name}", {"w": "9" * 5000})
    assert response.status_code == 400
