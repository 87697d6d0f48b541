"""`manage.py fal_check` (issue 14 §5) against the fal fake: fal-client's real code, our fal
backend and download allow-list, the webhook key URLs; a spend cap; a wrong key."""

import io
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.test_webhooks import ALPHA_JWKS_URL, JWKS_URL, jwk

LORA = "fal-ai/flux-lora"


@pytest.fixture
def fal_keys(fal):
    key = jwk(Ed25519PrivateKey.generate())
    return {
        JWKS_URL: fal.router.get(JWKS_URL).respond(200, json={"keys": [key]}),
        ALPHA_JWKS_URL: fal.router.get(ALPHA_JWKS_URL).respond(200, json={"keys": [key]}),
    }


def fal_check(*args) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("fal_check", "--poll-interval", "0", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def rows(output: str) -> list[tuple[str, str]]:
    """(check, result) of each table row."""
    found = re.findall(r"^([a-z ]+?)\s{2,}(OK|FAIL|WARN|SKIP)\s", output, re.MULTILINE)
    return [(check.strip(), result) for check, result in found]


def test_fal_check_on_a_working_account_passes_every_check(fal, fal_keys):
    output, error = fal_check()
    assert error is None, output
    assert rows(output) == [
        ("upload", "OK"),
        ("submit", "OK"),
        ("status", "OK"),
        ("result", "OK"),
        ("download", "OK"),
        ("cancel", "OK"),
        ("webhook keys", "OK"),
        ("webhook keys", "OK"),
    ]
    image, cancelled = fal.submitted(LORA)
    assert image.arguments["image_size"] == {"width": 512, "height": 512}
    assert image.arguments["num_inference_steps"] == 4
    assert cancelled.cancelled and cancelled.started_at is None  # cancelled while queued
    assert fal.count("status") >= 2 and fal.count("result") == 1 and fal.count("file") == 1
    assert "?logs=true" in next(url for op, url in fal.calls if op == "status")
    assert "JPEG 512x512" in output
    # 512² at $0.035/MP (FAL_PRICES) is $0.009 per image; two submitted.
    assert "spent at most $0.018 of the $0.10 cap" in output
    assert all(route.call_count == 1 for route in fal_keys.values())


def test_fal_check_with_a_wrong_key_says_so_and_exits_non_zero(fal, fal_keys):
    fal.lock_account(401)
    output, error = fal_check()
    assert error is not None
    assert ("account", "FAIL") in rows(output)
    assert "401: FAL_KEY is wrong" in output
    assert fal.submitted() == []  # nothing paid was even tried
    assert rows(output)[:2] == [("account", "FAIL"), ("upload", "SKIP")]
    assert {r for c, r in rows(output)[2:6]} == {"SKIP"}  # submit ... cancel: not run


def test_fal_check_refuses_steps_over_the_spend_cap(fal, fal_keys):
    output, error = fal_check("--max-usd", "0.01")
    assert error is not None and "cancel" in str(error)
    assert ("submit", "OK") in rows(output) and ("cancel", "SKIP") in rows(output)
    assert "over the --max-usd cap $0.01" in output
    assert len(fal.submitted(LORA)) == 1

    output, error = fal_check("--max-usd", "0")
    assert error is not None
    assert ("submit", "SKIP") in rows(output)
    assert len(fal.submitted(LORA)) == 1  # nothing more submitted


def test_fal_check_fails_when_the_output_host_is_not_in_our_allow_list(
    fal, fal_keys, settings
):
    settings.FAL_FILE_HOSTS = ["files.example"]
    settings.FAL_FILE_PREFIXES = []
    output, error = fal_check()
    assert error is not None
    assert ("download", "FAIL") in rows(output)
    assert "refused by our allow-list" in output


def test_fal_check_webhook_keys_from_the_alpha_url_only_is_a_warning(fal):
    key = jwk(Ed25519PrivateKey.generate())
    fal.router.get(JWKS_URL).respond(404, json={"detail": "Not Found"})
    fal.router.get(ALPHA_JWKS_URL).respond(200, json={"keys": [key]})
    output, error = fal_check()
    assert error is None, output
    keys = [r for c, r in rows(output) if c == "webhook keys"]
    assert keys == ["WARN", "OK"]


def test_fal_check_without_any_webhook_key_fails(fal):
    for url in (JWKS_URL, ALPHA_JWKS_URL):
        fal.router.get(url).respond(500)
    output, error = fal_check()
    assert error is not None
    assert [r for c, r in rows(output) if c == "webhook keys"] == ["FAIL", "FAIL"]


def test_fal_check_needs_a_fal_key(settings):
    settings.FAL_KEY = ""
    with pytest.raises(CommandError, match="FAL_KEY is not set"):
        call_command("fal_check", stdout=io.StringIO())
