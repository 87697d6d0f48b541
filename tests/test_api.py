"""API shell: auth (session + CSRF, bearer token), the {"detail": ...} error shape, scoping."""

import pytest
from django.test import Client

from webtoon.accounts.services import create_api_token, revoke_api_token
from webtoon.jobs import services

pytestmark = pytest.mark.django_db


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_anonymous_request_gets_401_json(client):
    response = client.get("/api/jobs/")
    assert response.status_code == 401
    assert response.json() == {"detail": "로그인이 필요합니다."}


def test_anonymous_post_gets_401_not_a_csrf_page(client):
    response = client.post("/api/jobs/image", {"prompt": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")


def test_bearer_token_authenticates_a_script(user):
    _, raw = create_api_token(user=user, name="script")
    client = Client()
    response = client.get("/api/jobs/", **bearer(raw))
    assert response.status_code == 200
    assert response.json() == []


def test_revoked_or_wrong_token_is_401(user):
    token, raw = create_api_token(user=user, name="script")
    revoke_api_token(token)
    assert Client().get("/api/jobs/", **bearer(raw)).status_code == 401
    assert Client().get("/api/jobs/", **bearer("wt_nope")).status_code == 401


def test_session_post_without_csrf_token_is_refused(user, offline):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/jobs/image", {"prompt": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_post_with_csrf_token_creates_a_job(
    user, offline, django_capture_on_commit_callbacks
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/jobs/")  # sets the csrftoken cookie like a browser visit
    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/jobs/image",
            {"prompt": "office"},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )
    assert response.status_code == 201
    job_id = response.json()["id"]
    status = client.get(f"/api/jobs/{job_id}").json()
    assert status["state"] == "succeeded"
    assert status["outputs"][0]["url"].startswith("/media/u/")


def test_bearer_post_needs_no_csrf(user, offline, django_capture_on_commit_callbacks):
    _, raw = create_api_token(user=user, name="script")
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/jobs/image", {"prompt": "cafe"}, content_type="application/json", **bearer(raw)
        )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "payload",
    [{}, {"prompt": ""}, {"prompt": "x", "image_size": "huge"}, {"prompt": "x" * 1001}],
)
def test_invalid_input_is_422_with_a_readable_detail(alice_client, payload):
    response = alice_client.post("/api/jobs/image", payload, content_type="application/json")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail


def test_malformed_json_is_a_4xx_json_error(alice_client):
    response = alice_client.post("/api/jobs/image", "{not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert isinstance(response.json()["detail"], str)


def test_unknown_api_path_is_404_json_even_for_post(alice_client):
    for method in (alice_client.get, alice_client.post):
        response = method("/api/does-not-exist")
        assert response.status_code == 404
        assert response.json() == {"detail": "찾을 수 없습니다."}


def test_someone_elses_job_is_404(user, other_user, alice_client, offline):
    job = services.create_image_job(other_user, "bob's picture")
    response = alice_client.get(f"/api/jobs/{job.public_id}")
    assert response.status_code == 404
    assert response.json()["detail"]
    assert alice_client.post(f"/api/jobs/{job.public_id}/retry").status_code == 404
    assert str(job.public_id) not in alice_client.get("/api/jobs/").content.decode()


def test_retry_of_a_job_that_did_not_fail_is_409(user, alice_client, offline):
    job = services.create_image_job(user, "queued")
    response = alice_client.post(f"/api/jobs/{job.public_id}/retry")
    assert response.status_code == 409
    assert response.json()["detail"]


def test_openapi_schema_and_docs_are_served(alice_client):
    schema = alice_client.get("/api/openapi.json").json()
    assert "/api/jobs/image" in schema["paths"]
    assert alice_client.get("/api/docs").status_code == 200
