"""fal webhooks: signature check (Ed25519 over a few headers + the body hash) and parsing.

See the project's FAL.md §4. fal publishes its public keys as a JWKS document; a webhook is
genuine when one of them verifies

    "\\n".join([request_id, user_id, timestamp, sha256(body).hexdigest()])

against the hex signature header, and the timestamp is close to now (no replays).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

HEADER_PREFIX = "x-fal-webhook-"
JWKS_CACHE_KEY = "fal:webhook:jwks:v1"
# FAL.md: cache the keys for 24 hours or less.
JWKS_CACHE_SECONDS = 24 * 60 * 60
JWKS_TIMEOUT_SECONDS = 10.0
# A failed fetch is remembered this long: unsigned POSTs must not each make an outbound call.
JWKS_FAILED_CACHE_KEY = "fal:webhook:jwks:failed:v1"
JWKS_FAILED_CACHE_SECONDS = 60
# Epoch seconds have 10 digits until 2286; int() of thousands of digits is slow or raises.
MAX_TIMESTAMP_DIGITS = 12
DEFAULT_LEEWAY_SECONDS = 300
ED25519_PUBLIC_KEY_BYTES = 32

WebhookStatus = Literal["OK", "ERROR"]


SIGNATURE_HEADERS = tuple(
    HEADER_PREFIX + part for part in ("request-id", "user-id", "timestamp", "signature")
)


def has_signature_headers(headers: Mapping[str, str]) -> bool:
    """All four signature headers present and well-formed: checked before fetching keys, so
    that a request that cannot be genuine costs no outbound call."""
    lowered = {name.lower(): value for name, value in headers.items()}
    request_id, user_id, timestamp, signature_hex = (lowered.get(h, "") for h in SIGNATURE_HEADERS)
    if not (request_id and user_id and signature_hex):
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        return False
    return len(signature_hex) == 128 and all(c in "0123456789abcdefABCDEF" for c in signature_hex)


@dataclass(frozen=True)
class WebhookEvent:
    request_id: str
    status: WebhookStatus
    # "ERROR": fal's message. "OK" whose output was not JSON: fal's `payload_error`.
    error: str | None
    payload: dict[str, Any] | None


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    keys: list[dict],
    *,
    now: float | None = None,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
) -> bool:
    """True when one of `keys` (JWKS entries) signed this request within `leeway` seconds.

    `headers` may be Django's `request.headers` or any mapping (names compared case-blind);
    `body` must be the raw bytes (`request.body`), not re-encoded JSON.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    request_id, user_id, timestamp, signature_hex = (
        lowered.get(HEADER_PREFIX + part, "")
        for part in ("request-id", "user-id", "timestamp", "signature")
    )
    if not (request_id and user_id and timestamp and signature_hex):
        return False
    # Digits only: int() would also take " 12", "+12" and "1_2"; and not thousands of them.
    if not (
        timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS
    ):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > leeway:
        return False
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    for jwk in keys:
        public_key = _public_key(jwk)
        if public_key is None:
            continue
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def jwks_keys() -> list[dict]:
    """fal's Ed25519 webhook keys, cached 24 h. [] when they cannot be had (caller rejects)."""
    cached = cache.get(JWKS_CACHE_KEY)
    if cached is not None:
        return cached
    if cache.get(JWKS_FAILED_CACHE_KEY):
        return []
    keys = _fetch_jwks()
    if keys:
        cache.set(JWKS_CACHE_KEY, keys, JWKS_CACHE_SECONDS)
    else:
        # An empty set is not kept for a day (it would refuse every webhook), only briefly.
        cache.set(JWKS_FAILED_CACHE_KEY, True, JWKS_FAILED_CACHE_SECONDS)
    return keys


def _fetch_jwks() -> list[dict]:
    """The keys of the first FAL_WEBHOOK_JWKS_URLS entry that serves any, in order."""
    for url in settings.FAL_WEBHOOK_JWKS_URLS:
        try:
            return fetch_jwks(url)
        except JwksUnavailable as exc:
            logger.warning("fal webhook keys: %s", exc)
    return []


class JwksUnavailable(Exception):
    """A JWKS URL gave no usable key; the message says why."""


def fetch_jwks(url: str) -> list[dict]:
    """The Ed25519 keys published at `url` (https only). Raises JwksUnavailable."""
    if urlsplit(url).scheme != "https":
        raise JwksUnavailable(f"{url!r} is not https")
    try:
        # No redirects: the keys must come from the configured host, nowhere else.
        response = httpx.get(url, timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise JwksUnavailable(f"fetching {url} failed: {exc}") from exc
    if not (keys := _ed25519_keys(document)):
        raise JwksUnavailable(f"{url} has no Ed25519 key")
    return keys


def parse_webhook(body: bytes) -> WebhookEvent:
    """The event in a webhook body. Raises ValueError when it is not a fal webhook body."""
    data = json.loads(body)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(data, dict):
        raise ValueError("webhook body is not a JSON object")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("webhook body has no request_id")
    status = data.get("status")
    if status not in ("OK", "ERROR"):
        raise ValueError(f"webhook status is {status!r}, not OK or ERROR")
    payload = data.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise ValueError("webhook payload is not a JSON object")
    error = data.get("error") or data.get("payload_error")
    return WebhookEvent(
        request_id=request_id,
        status=status,
        error=None if error is None else str(error),
        payload=payload,
    )


def _ed25519_keys(document: Any) -> list[dict]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return []
    return [
        key
        for key in document["keys"]
        if isinstance(key, dict)
        and key.get("kty") == "OKP"
        and key.get("crv") == "Ed25519"
        and isinstance(key.get("x"), str)
    ]


def _public_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey | None:
    x = jwk.get("x")
    if not isinstance(x, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)
