"""fal webhooks: only a body signed by fal's key, recently, is accepted; the keys are cached."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.cache import cache

from webtoon.imaging import webhooks
from webtoon.imaging.webhooks import WebhookEvent, jwks_keys, parse_webhook, verify_signature

ROOT = Path(__file__).resolve().parent.parent
JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"  # tried first
ALPHA_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"  # then this one
BODY = json.dumps(
    {
        "request_id": "req-123",
        "gateway_request_id": "gw-123",
        "status": "OK",
        "payload": {"diffusers_lora_file": {"url": "https://v3.fal.media/files/lora.safetensors"}},
    }
).encode()
NOW = 1_800_000_000


def jwk(private_key: Ed25519PrivateKey) -> dict:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "test"}


def signed_headers(private_key, body: bytes, *, timestamp: int = NOW) -> dict[str, str]:
    request_id, user_id = "req-123", "user-42"
    message = "\n".join(
        [request_id, user_id, str(timestamp), hashlib.sha256(body).hexdigest()]
    ).encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": private_key.sign(message).hex(),
    }


@pytest.fixture
def fal_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete_many([webhooks.JWKS_CACHE_KEY, webhooks.JWKS_FAILED_CACHE_KEY])
    yield
    cache.delete_many([webhooks.JWKS_CACHE_KEY, webhooks.JWKS_FAILED_CACHE_KEY])


# --- verify_signature ---------------------------------------------------------------------------
def test_verify_signature_valid_is_accepted(fal_key):
    headers = signed_headers(fal_key, BODY)

    assert verify_signature(headers, BODY, [jwk(fal_key)], now=NOW)


def test_verify_signature_header_names_any_case(fal_key):
    headers = {name.lower(): value for name, value in signed_headers(fal_key, BODY).items()}

    assert verify_signature(headers, BODY, [jwk(fal_key)], now=NOW + 10)


def test_verify_signature_any_listed_key_may_sign(fal_key):
    other = Ed25519PrivateKey.generate()
    keys = [jwk(other), {"kty": "OKP", "crv": "Ed25519", "x": "not-a-key"}, jwk(fal_key)]

    assert verify_signature(signed_headers(fal_key, BODY), BODY, keys, now=NOW)


def test_verify_signature_tampered_body_is_refused(fal_key):
    headers = signed_headers(fal_key, BODY)
    tampered = BODY.replace(b'"OK"', b'"ERROR"')

    assert not verify_signature(headers, tampered, [jwk(fal_key)], now=NOW)


def test_verify_signature_wrong_key_is_refused(fal_key):
    headers = signed_headers(fal_key, BODY)
    stranger = Ed25519PrivateKey.generate()

    assert not verify_signature(headers, BODY, [jwk(stranger)], now=NOW)


def test_verify_signature_no_keys_is_refused(fal_key):
    assert not verify_signature(signed_headers(fal_key, BODY), BODY, [], now=NOW)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_verify_signature_stale_timestamp_is_refused(fal_key, age):
    headers = signed_headers(fal_key, BODY, timestamp=NOW - age)

    assert not verify_signature(headers, BODY, [jwk(fal_key)], now=NOW)


def test_verify_signature_within_leeway_is_accepted(fal_key):
    headers = signed_headers(fal_key, BODY, timestamp=NOW - 300)

    assert verify_signature(headers, BODY, [jwk(fal_key)], now=NOW)


def test_verify_signature_uses_clock_by_default(fal_key):
    fresh = signed_headers(fal_key, BODY, timestamp=int(time.time()))
    old = signed_headers(fal_key, BODY, timestamp=int(time.time()) - 1000)

    assert verify_signature(fresh, BODY, [jwk(fal_key)])
    assert not verify_signature(old, BODY, [jwk(fal_key)])


@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
def test_verify_signature_missing_header_is_refused(fal_key, header):
    headers = signed_headers(fal_key, BODY)
    del headers[header]

    assert not verify_signature(headers, BODY, [jwk(fal_key)], now=NOW)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Fal-Webhook-Timestamp", "soon"),
        ("X-Fal-Webhook-Timestamp", f" {NOW}"),
        ("X-Fal-Webhook-Signature", "zz-not-hex"),
    ],
)
def test_verify_signature_malformed_header_is_refused(fal_key, header, value):
    headers = {**signed_headers(fal_key, BODY), header: value}

    assert not verify_signature(headers, BODY, [jwk(fal_key)], now=NOW)


# --- jwks_keys ----------------------------------------------------------------------------------
def test_jwks_keys_fetched_once_then_cached(fal_key):
    document = {
        "keys": [
            jwk(fal_key),
            {"kty": "RSA", "n": "abc", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "x": "abc"},
        ]
    }
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(JWKS_URL).respond(200, json=document)

        first = jwks_keys()
        second = jwks_keys()

    assert first == second == [jwk(fal_key)]
    assert route.call_count == 1
    assert verify_signature(signed_headers(fal_key, BODY), BODY, first, now=NOW)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(302, headers={"Location": "https://evil.example/jwks.json"}),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"keys": []}),
    ],
)
def test_jwks_keys_fetch_failure_gives_no_keys(response):
    with respx.mock(assert_all_called=True) as mock:
        routes = [mock.get(url).mock(return_value=response) for url in (JWKS_URL, ALPHA_JWKS_URL)]

        assert jwks_keys() == []
        # A failure is remembered briefly (not for a day): the next webhook does not fetch.
        assert jwks_keys() == []

    assert [route.call_count for route in routes] == [1, 1]


def test_jwks_keys_network_error_gives_no_keys():
    with respx.mock(assert_all_called=True) as mock:
        for url in (JWKS_URL, ALPHA_JWKS_URL):
            mock.get(url).mock(side_effect=httpx.ConnectTimeout("slow"))

        assert jwks_keys() == []


def test_jwks_keys_plain_http_url_is_never_fetched(settings):
    settings.FAL_WEBHOOK_JWKS_URLS = ["http://rest.alpha.fal.ai/.well-known/jwks.json"]

    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(settings.FAL_WEBHOOK_JWKS_URLS[0]).respond(200, json={"keys": []})

        assert jwks_keys() == []

    assert not route.called


def post_signed_webhook(client, key: Ed25519PrivateKey):
    headers = signed_headers(key, BODY, timestamp=int(time.time()))
    return client.post("/api/fal/webhook", BODY, content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_webhook_signed_with_the_key_served_by_rest_fal_ai_is_accepted(client, fal_key):
    with respx.mock(assert_all_called=False) as mock:
        first = mock.get(JWKS_URL).respond(200, json={"keys": [jwk(fal_key)]})
        second = mock.get(ALPHA_JWKS_URL).respond(200, json={"keys": []})
        assert post_signed_webhook(client, fal_key).status_code == 200
        assert post_signed_webhook(client, Ed25519PrivateKey.generate()).status_code == 400
    assert first.call_count == 1 and not second.called  # the first URL answered: cached


@pytest.mark.django_db
@pytest.mark.parametrize(
    "first_answer",
    [
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(301, headers={"Location": "https://evil.example/jwks.json"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"keys": [{"kty": "RSA", "n": "abc", "e": "AQAB"}]}),
    ],
)
def test_webhook_signed_with_the_key_served_by_the_alpha_url_is_accepted(
    client, fal_key, first_answer
):
    with respx.mock(assert_all_called=True) as mock:
        if isinstance(first_answer, Exception):
            first = mock.get(JWKS_URL).mock(side_effect=first_answer)
        else:
            first = mock.get(JWKS_URL).mock(return_value=first_answer)
        second = mock.get(ALPHA_JWKS_URL).respond(200, json={"keys": [jwk(fal_key)]})
        assert post_signed_webhook(client, fal_key).status_code == 200
        assert post_signed_webhook(client, fal_key).status_code == 200
    assert (first.call_count, second.call_count) == (1, 1)  # then cached; no redirect followed


@pytest.mark.parametrize(
    "environment, urls",
    [
        ({}, [JWKS_URL, ALPHA_JWKS_URL]),
        (
            {"FAL_WEBHOOK_JWKS_URL": "https://keys.example/jwks.json"},
            ["https://keys.example/jwks.json"],
        ),
        (
            {"FAL_WEBHOOK_JWKS_URLS": "https://a.example/j.json,https://b.example/j.json"},
            ["https://a.example/j.json", "https://b.example/j.json"],
        ),
    ],
)
def test_jwks_urls_setting_and_the_older_single_url_variable(environment, urls):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_WEBHOOK_JWKS")}
    env.update(environment, DJANGO_SETTINGS_MODULE="webtoon.settings")
    probe = "from django.conf import settings; print(json.dumps(settings.FAL_WEBHOOK_JWKS_URLS))"
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {probe}"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout) == urls


# --- parse_webhook ------------------------------------------------------------------------------
def test_parse_webhook_ok():
    event = parse_webhook(BODY)

    assert event == WebhookEvent(
        request_id="req-123",
        status="OK",
        error=None,
        payload={"diffusers_lora_file": {"url": "https://v3.fal.media/files/lora.safetensors"}},
    )


def test_parse_webhook_error():
    body = json.dumps(
        {
            "request_id": "req-9",
            "gateway_request_id": "gw-9",
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]},
        }
    ).encode()

    event = parse_webhook(body)

    assert event.status == "ERROR"
    assert event.error == "Invalid status code: 422"
    assert event.payload["detail"][0]["msg"] == "field required"


def test_parse_webhook_unparsable_output_keeps_payload_error():
    body = json.dumps(
        {"request_id": "r", "status": "OK", "payload": None, "payload_error": "not JSON"}
    ).encode()

    event = parse_webhook(body)

    assert event.payload is None
    assert event.error == "not JSON"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"status": "OK", "payload": {}}).encode(),
        json.dumps({"request_id": "", "status": "OK"}).encode(),
        json.dumps({"request_id": "r", "status": "MAYBE"}).encode(),
        json.dumps({"request_id": "r", "status": "OK", "payload": [1, 2]}).encode(),
    ],
)
def test_parse_webhook_malformed_raises(body):
    with pytest.raises(ValueError):
        parse_webhook(body)
