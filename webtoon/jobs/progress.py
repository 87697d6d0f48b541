"""Progress from fal's log lines ("step 795/1500"), else from elapsed time."""

from __future__ import annotations

import re
from typing import Any

STEP_RE = re.compile(r"(?:step|steps|it)?\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)


def steps_from_logs(logs: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The latest "N/T" found in the log messages, newest first; None when there is none."""
    for entry in reversed(logs):
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        for match in reversed(list(STEP_RE.finditer(message))):
            step, total = int(match.group(1)), int(match.group(2))
            if 0 < total and step <= total:
                return step, total
    return None


def estimate_from_elapsed(elapsed: float, expected: float) -> float:
    """A fraction that approaches but never reaches 1 while the remote side is silent."""
    if expected <= 0:
        return 0.0
    return min(0.95, max(0.0, elapsed / expected))
