"""A live check of fal for operators (`manage.py fal_check`, issue 14 §5).

It runs, with the real key, each thing the product relies on, the way the product does it
(through the fal backend, so fal-client's real code and our download allow-list are used):
an upload, one small FLUX LoRA image through submit / status with logs / result, a request
cancelled while queued, the download of the output, and fal's webhook keys. Every paid step
is priced from settings first and refused when it would take the spend past the cap.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from PIL import Image

from webtoon.imaging import BackendError, DownloadRefused, ImageBackend, webhooks

from . import pricing

ENDPOINT = "fal-ai/flux-lora"
SIZE = 512
ARGUMENTS: dict[str, Any] = {
    "prompt": "a small red cube on a white table, studio photo",
    "image_size": {"width": SIZE, "height": SIZE},
    "num_inference_steps": 4,
    "num_images": 1,
    "output_format": "jpeg",
    "enable_safety_checker": True,
    "seed": 7,
}
OK, FAIL, WARN, SKIP = "OK", "FAIL", "WARN", "SKIP"


@dataclass
class Row:
    check: str
    result: str  # OK | FAIL | WARN (works, but not as expected) | SKIP (not run)
    detail: str


class AccountDown(Exception):
    """fal refuses the key or the account: nothing else can be checked."""


@dataclass
class LiveCheck:
    backend: ImageBackend
    max_usd: Decimal
    poll_interval: float = 1.0
    timeout: float = 300.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.rows: list[Row] = []
        self.spent = Decimal(0)  # at most: a paid step is counted as soon as it is submitted
        self.output_url = ""

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> list[Row]:
        steps = [
            (("upload",), self.upload),
            (("submit", "status", "result"), self.image),
            (("download",), self.download),
            (("cancel",), self.cancel_queued),
        ]
        for number, (_, step) in enumerate(steps):
            try:
                step()
            except AccountDown as exc:
                self.add("account", FAIL, str(exc))
                done = {row.check for row in self.rows}
                for checks, _ in steps[number:]:
                    for check in checks:
                        if check not in done:
                            self.add(check, SKIP, "fal refused the account")
                break
        self.webhook_keys()
        return self.rows

    def add(self, check: str, result: str, detail: str) -> None:
        self.rows.append(Row(check, result, detail))

    def call(self, fn, *args, **kwargs):
        """A backend call; a 401/403 that is about the account stops the run."""
        try:
            return fn(*args, **kwargs)
        except BackendError as exc:
            if exc.status_code == 401:
                raise AccountDown(f"fal answered 401: FAL_KEY is wrong ({exc})") from exc
            if exc.code == "account_refused":
                raise AccountDown(f"fal refuses the account: {exc}") from exc
            raise

    @staticmethod
    def price() -> Decimal:
        fallback = Decimal(str(settings.COST_PER_LORA_INFERENCE))
        return pricing.estimate(ENDPOINT, ARGUMENTS, fallback)

    def afford(self, check: str, price: Decimal) -> bool:
        if self.spent + price > self.max_usd:
            detail = (
                f"not run: ${price} would take the spend to ${self.spent + price}, over the "
                f"--max-usd cap ${self.max_usd}"
            )
            self.add(check, SKIP, detail)
            return False
        self.spent += price
        return True

    # --- the steps ----------------------------------------------------------------------------
    def upload(self) -> None:
        try:
            url = self.call(self.backend.upload, b"fal_check\n", "text/plain", "fal_check.txt")
        except BackendError as exc:
            self.add("upload", FAIL, str(exc))
            return
        if urlsplit(str(url)).scheme == "https":
            self.add("upload", OK, str(url))
        else:
            self.add("upload", FAIL, f"{url}: not an https URL")

    def image(self) -> None:
        price = self.price()
        if not self.afford("submit", price):
            for check in ("status", "result"):
                self.add(check, SKIP, "no image submitted")
            return
        try:
            request_id = self.call(self.backend.submit, ENDPOINT, dict(ARGUMENTS))
        except BackendError as exc:
            self.add("submit", FAIL, str(exc))
            return
        self.add("submit", OK, f"{ENDPOINT} {SIZE}x{SIZE}, 4 steps: {request_id} (≤ ${price})")
        if self.wait_for(request_id):
            self.result(request_id)

    def wait_for(self, request_id: str) -> bool:
        seen: list[str] = []
        logs = 0
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                status = self.call(self.backend.status, ENDPOINT, request_id)
            except BackendError as exc:
                self.add("status", FAIL, str(exc))
                self.add("result", SKIP, "no status")
                return False
            if not seen or seen[-1] != status.state:
                seen.append(status.state)
            logs = max(logs, len(status.logs or []))
            if status.state == "completed":
                if status.error:
                    self.add("status", FAIL, f"completed with an error: {status.error}")
                    self.add("result", SKIP, "the request failed")
                    return False
                self.add("status", OK, f"{' -> '.join(seen)}, {logs} log line(s) (with logs)")
                return True
            self.sleep(self.poll_interval)
        self.add("status", FAIL, f"not completed after {self.timeout:.0f} s ({' -> '.join(seen)})")
        self.add("result", SKIP, "not completed")
        try:
            self.call(self.backend.cancel, ENDPOINT, request_id)
        except BackendError:
            pass  # the row already says what went wrong
        return False

    def result(self, request_id: str) -> None:
        try:
            out = self.call(self.backend.result, ENDPOINT, request_id)
        except BackendError as exc:
            self.add("result", FAIL, str(exc))
            return
        images = out.get("images") or [{}]
        first = images[0] if isinstance(images[0], dict) else {}
        size = (first.get("width"), first.get("height"))
        flags = out.get("has_nsfw_concepts")
        problems = []
        if not str(first.get("url", "")).startswith("https://"):
            problems.append("no https image URL")
        if size != (SIZE, SIZE):
            problems.append(f"size {size}, asked {SIZE}x{SIZE}")
        if not isinstance(flags, list):
            problems.append("no has_nsfw_concepts list")
        self.output_url = str(first.get("url") or "")
        detail = f"{self.output_url} {size[0]}x{size[1]}, has_nsfw_concepts={flags}"
        self.add("result", FAIL if problems else OK, "; ".join(problems) or detail)

    def download(self) -> None:
        if not self.output_url:
            self.add("download", SKIP, "no output URL")
            return
        with tempfile.TemporaryFile() as fh:
            try:
                size = self.call(
                    self.backend.download,
                    self.output_url,
                    fh,
                    max_bytes=settings.MAX_DOWNLOAD_BYTES,
                )
            except DownloadRefused as exc:
                self.add("download", FAIL, f"refused by our allow-list (FAL_FILE_HOSTS): {exc}")
                return
            except BackendError as exc:
                self.add("download", FAIL, str(exc))
                return
            fh.seek(0)
            try:
                with Image.open(io.BytesIO(fh.read())) as im:
                    picture = f"{im.format} {im.width}x{im.height}"
            except OSError:
                self.add("download", FAIL, f"{size} bytes that are not a picture")
                return
        host = urlsplit(self.output_url).hostname
        self.add("download", OK, f"{size} bytes from {host}: {picture}")

    def cancel_queued(self) -> None:
        # Cancelled while queued it costs nothing; counted in case a runner took it first.
        if not self.afford("cancel", self.price()):
            return
        try:
            request_id = self.call(self.backend.submit, ENDPOINT, dict(ARGUMENTS))
            self.call(self.backend.cancel, ENDPOINT, request_id)
        except BackendError as exc:
            if exc.status_code == 400:
                self.add("cancel", WARN, f"ran before the cancel arrived (fal may charge): {exc}")
            else:
                self.add("cancel", FAIL, str(exc))
            return
        self.add("cancel", OK, f"{request_id}: cancel accepted; {self.final_state(request_id)}")

    def final_state(self, request_id: str) -> str:
        for _ in range(10):
            try:
                status = self.call(self.backend.status, ENDPOINT, request_id)
            except BackendError as exc:
                return f"status unreadable: {exc}"
            if status.state == "completed":
                return f"completed: {status.error or 'ran anyway (fal may charge)'}"
            self.sleep(self.poll_interval)
        return f"still {status.state}"

    def webhook_keys(self) -> None:
        found: list[tuple[str, str]] = []
        for url in settings.FAL_WEBHOOK_JWKS_URLS:
            try:
                found.append((url, f"{len(webhooks.fetch_jwks(url))} Ed25519 key(s)"))
            except webhooks.JwksUnavailable as exc:
                found.append((url, f"!{exc}"))
        usable = any(not detail.startswith("!") for _, detail in found)
        for url, detail in found:
            if not detail.startswith("!"):
                self.add("webhook keys", OK, f"{url}: {detail}")
            else:
                # Another URL serving keys is enough for webhooks to work.
                self.add("webhook keys", WARN if usable else FAIL, detail[1:])


def run(backend: ImageBackend, *, max_usd: Decimal, **options) -> tuple[list[Row], Decimal]:
    check = LiveCheck(backend, max_usd, **options)
    return check.run(), check.spent


def table(rows: list[Row]) -> str:
    width = max(len(r.check) for r in rows)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.check:<{width}}  {r.result:<6}  {r.detail}" for r in rows]
    return "\n".join(lines)
