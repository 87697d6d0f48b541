"""Keep secrets out of logs and stored messages.

`redact()` is the one function that scrubs a text: the configured FAL_KEY, Authorization
header values (``Key …``, ``Bearer …``, ``Basic …``) and our API tokens (``wt_…``). fal's error
replies are passed through it where our messages are built (webtoon.imaging.fal), and
`RedactSecrets`, a logging filter on every handler in settings.LOGGING, passes every log
record through it too (message, arguments, exception and stack text), whichever library
wrote the record.
"""

from __future__ import annotations

import functools
import logging
import re
import traceback

from django.conf import settings
from django.core.exceptions import AppRegistryNotReady

REDACTED = "[REDACTED]"

# "Authorization: Key abc", "'authorization': 'Bearer abc'", "Authorization=Basic abc" ...
_AUTH_HEADER = re.compile(
    r"""(?P<head>authorization['"]?\s*[:=]\s*['"]?)(?P<scheme>[A-Za-z]+\s+)?[^\s'",;}]+""",
    re.IGNORECASE,
)
# A credential after its scheme word, wherever it appears ("Key <id>:<secret>", "Bearer …").
_SCHEME_CREDENTIAL = re.compile(
    r"\b(?P<scheme>Key|Bearer|Basic|Token)\s+[A-Za-z0-9._~+/:=-]{16,}", re.IGNORECASE
)


@functools.cache
def _api_token() -> tuple[re.Pattern[str], str]:
    # Imported late: logging is configured before the app registry is ready.
    from webtoon.accounts.services import TOKEN_PREFIX

    # TOKEN_PREFIX + secrets.token_urlsafe(32): 43 URL-safe characters after the prefix.
    return re.compile(r"\b" + re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{20,}"), TOKEN_PREFIX


def _configured_secrets() -> list[str]:
    key = getattr(settings, "FAL_KEY", "") or ""
    found = [key] if len(key) >= 8 else []
    # A fal key is "<key id>:<key secret>"; the secret half alone is just as sensitive.
    _, sep, secret = key.partition(":")
    if sep and len(secret) >= 8:
        found.append(secret)
    return sorted(found, key=len, reverse=True)


def redact(text: object) -> str:
    """`text` as a string with every known secret replaced by [REDACTED]."""
    text = str(text)
    for secret in _configured_secrets():
        text = text.replace(secret, REDACTED)
    try:
        pattern, prefix = _api_token()
        text = pattern.sub(prefix + REDACTED, text)
    except AppRegistryNotReady:  # only while Django starts up, before any request exists
        pass
    text = _AUTH_HEADER.sub(lambda m: f"{m['head']}{m['scheme'] or ''}{REDACTED}", text)
    return _SCHEME_CREDENTIAL.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrites each record in place, so every handler after this one sees it clean too.

    The message is formatted here (args merged in) and the exception is rendered to text:
    the live exception object is dropped, as its frames and arguments may hold the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._scrub(record)
        except Exception:  # a filter must never break the code that logs
            record.msg, record.args = "(log record withheld: it could not be redacted)", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    @staticmethod
    def _scrub(record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we have, still scrubbed
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            if not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
