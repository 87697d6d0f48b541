"""One cleaning for every text a user sends (issue 18): the API's JSON bodies, page forms and
restored metadata.json all go through clean_text, so a field cannot hold a name that looks
empty, text that reads backwards, or Windows line ends in one place and not another.

- "\\r\\n" and a lone "\\r" become "\\n".
- Invisible formatting characters are removed: zero-width space and word joiner, the byte
  order mark, left-to-right/right-to-left marks, and the bidi embeddings, overrides and
  isolates (U+202A-U+202E, U+2066-U+2069; "Trojan Source" text). The zero-width joiner and
  non-joiner stay: emoji sequences and some scripts need them.
- What is left with nothing visible (only spaces and joiners) becomes "", so each field's
  own "required" rule refuses it.

Other control characters (NUL, BEL, ESC ...) are refused, not cleaned: has_control().
"""

from __future__ import annotations

import unicodedata
from typing import Any

INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u2060\ufeff\u200e\u200f\u061c"  # zero-width space, word joiner, BOM, marks
        "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
        "\u2066\u2067\u2068\u2069",  # bidi isolates
    )
)
ALLOWED_CONTROLS = "\t\n\r"


def has_visible(text: str) -> bool:
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in text)


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(INVISIBLE)
    return text if has_visible(text) else ""


def has_control(text: str) -> bool:
    """A control character other than tab and line ends (NUL included)."""
    return any(unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS for ch in text)


def clean_data(value: Any, *, skip=lambda key: False) -> Any:
    """clean_text on every string in a JSON-like value; keys for which `skip(key)` is true
    (passwords) keep their value as sent."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {k: v if skip(k) else clean_data(v, skip=skip) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_data(v, skip=skip) for v in value]
    return value


def is_secret_field(name: str) -> bool:
    """Passwords and tokens are compared byte for byte: never rewritten."""
    lowered = str(name).lower()
    return any(word in lowered for word in ("password", "token", "csrf"))


def contains_control(value: Any) -> bool:
    """has_control() anywhere in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return has_control(value)
    if isinstance(value, dict):
        return any(contains_control(k) or contains_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_control(v) for v in value)
    return False
