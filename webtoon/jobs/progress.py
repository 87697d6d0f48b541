"""Progress from fal's log lines, else from elapsed time.

fal does not document what a trainer logs (FAL.md §3), so every shape seen in trainers that
run on fal is read: "step 675/1500", a tqdm bar " 45%|████▌     | 675/1500 [05:12<06:21]",
"Step 675 of 1500", "steps: 675" (the total is the number of steps the call asked for) and a
bare percentage "45%" / "45.0 %".
"""

from __future__ import annotations

import re
from typing import Any

# "step 675/1500", tqdm's "675/1500 [", "Saving checkpoint 1/3" (told apart by its total).
STEP_RE = re.compile(r"(\d+)\s*/\s*(\d+)")
# "Step 675 of 1500", "steps 675 out of 1500".
STEP_OF_RE = re.compile(r"\bsteps?\s+(\d+)\s+(?:out\s+)?of\s+(\d+)", re.IGNORECASE)
# "steps: 675", "global_step=675": a count whose total only the request knows.
STEP_COUNT_RE = re.compile(r"steps?\s*[:=]\s*(\d+)(?!\s*/|\d)", re.IGNORECASE)
# "45%", "45.0 %" (not the "5" of "4.5%").
PERCENT_RE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*%")


def steps_from_logs(
    logs: list[dict[str, Any]], expected_total: int | None = None
) -> tuple[int, int] | None:
    """The latest (step, total) found in the log messages, newest first; None when there is
    none. `expected_total` is the number of steps the call asked for: with it, counters of
    another total ("Saving checkpoint 1/3") are skipped, and a bare "steps: 675" or "45%"
    becomes a step of that total."""
    for entry in reversed(logs):
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        if (steps := _steps_in(message, expected_total)) is not None:
            return steps
    return None


def _steps_in(message: str, expected_total: int | None) -> tuple[int, int] | None:
    counters = [
        (int(m.group(1)), int(m.group(2)))
        for pattern in (STEP_RE, STEP_OF_RE)
        for m in reversed(list(pattern.finditer(message)))
    ]
    for step, total in counters:
        if 0 < total and step <= total and expected_total in (None, total):
            return step, total
    if expected_total and expected_total > 0:
        for m in reversed(list(STEP_COUNT_RE.finditer(message))):
            if (step := int(m.group(1))) <= expected_total:
                return step, expected_total
    if counters:
        # A line with some other counter ("checkpoint 1/3 (33%)"): its percentage is not ours.
        return None
    for m in reversed(list(PERCENT_RE.finditer(message))):
        percent = float(m.group(1))
        if percent <= 100:
            total = expected_total if expected_total and expected_total > 0 else 100
            return int(total * percent / 100), total
    return None


def estimate_from_elapsed(elapsed: float, expected: float) -> float:
    """A fraction that approaches but never reaches 1 while the remote side is silent."""
    if expected <= 0:
        return 0.0
    return min(0.95, max(0.0, elapsed / expected))
