"""A fake of fal.ai's HTTP API for tests and benchmarks (respx on httpx).

It answers exactly what fal-client 1.0.x sends (see shared/spec/FAL.md §1), so the real
fal-client code path runs end to end:

- POST https://queue.fal.run/<app>                     -> request_id + the three URLs
- GET  https://queue.fal.run/<owner>/<alias>/requests/<id>/status?logs=1
                                                        -> IN_QUEUE / IN_PROGRESS / COMPLETED
- GET  https://queue.fal.run/<owner>/<alias>/requests/<id>   -> the model output
- PUT  https://queue.fal.run/<owner>/<alias>/requests/<id>/cancel -> 202
- POST https://rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3 -> CDN token
- POST https://v3.fal.media/files/upload               -> {"access_url"}
- GET  https://v3.fal.media/files/<name>               -> the bytes
- POST https://fal.run/fal-ai/any-llm                   -> {"output"} (see `llm_replies`)

Faults are injected per operation: `fake.fail("submit", status=500, times=2)`,
`fake.fail("status", timeout=True)`, `fake.fail("result", malformed=True)`.
Latency: `delay` (seconds slept in every answer) and `run_seconds` (wall time a request
spends IN_PROGRESS before it completes); `queue_polls` / `running_polls` make a request
need that many status reads in each state.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import respx
from PIL import Image, ImageOps

from webtoon.imaging.safetensors_file import build_safetensors
from webtoon.imaging.sizes import requested_size
from webtoon.imaging.variants import vary_photo

QUEUE = "https://queue.fal.run"
REST = "https://rest.fal.ai"
CDN = "https://v3.fal.media"
# fal's trainer results often live in its Google Cloud Storage bucket, not on *.fal.media.
GCS = "https://storage.googleapis.com"
GCS_BUCKETS = ("fal-flux-lora", "falserverless")
LOCKED = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
)
# Argument names that carry input file URLs (the fake fetches them like fal's runners do).
INPUT_KEYS = ("image_url", "mask_url", "images_data_url", "image_data_url")
RUN = "https://fal.run"

REQUEST_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<alias>[^/]+)/requests/(?P<rid>[^/]+)(?P<rest>/.*)?$"
)


@dataclass
class Fault:
    op: str
    endpoint: str | None
    times: int
    status: int | None = None
    timeout: bool = False
    malformed: bool = False
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    match: Any = None  # submit only: a predicate on the arguments


@dataclass
class Chaos:
    """Random faults on every answer, for soak runs: latency drawn from `latency` (seconds),
    `error_rate` of answers a 5xx, `timeout_rate` a read timeout. A submit that times out is
    the worst case: fal queued it and the answer was lost on the way back."""

    latency: tuple[float, float] = (0.0, 0.0)
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    ops: frozenset[str] | None = None  # only these operations (None: every one)

    def applies(self, op: str) -> bool:
        return self.ops is None or op in self.ops

    def roll(self) -> str | None:
        with _CHAOS_LOCK:
            pause = self.rng.uniform(*self.latency)
            draw = self.rng.random()
        if pause:
            time.sleep(pause)
        if draw < self.error_rate:
            return "error"
        if draw < self.error_rate + self.timeout_rate:
            return "timeout"
        return None


_CHAOS_LOCK = threading.Lock()


@dataclass
class FakeRequest:
    request_id: str
    endpoint: str
    arguments: dict[str, Any]
    submitted_at: float
    headers: dict[str, str]
    status_polls: int = 0
    started_at: float | None = None
    cancelled: bool = False
    output: dict[str, Any] | None = None
    error: str | None = None
    # How the result GET answers a failed request: fal's typed model error or infrastructure.
    error_status: int = 500
    error_body: Any = None
    error_headers: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None  # fal_webhook of the submit, where fal reports the end
    webhook_sent: bool = False
    # What seeds its picture: its endpoint and prompt, and how many requests before it had the
    # same ones (a regenerated cut is a new picture), so a test draws the same pictures each
    # run whatever order its concurrent calls reach the fake in (issue 19, tests/conftest.py).
    draw: str = ""


# What a trainer's progress line looks like (fal documents none; these are seen in the wild).
TRAINING_LOG_SHAPES = {
    "steps": "Training: step {step}/{total} loss=0.08",
    "tqdm": "{pct:3.0f}%|{bar:<10}| {step}/{total} [05:12<06:21,  2.16it/s]",
    "step_of": "Step {step} of {total}",
    "count": "steps: {step}",
    "percent": "Training progress: {pct:.1f} %",
}


TESTDATA = Path(__file__).resolve().parents[2] / "tests" / "testdata"
FACE_PHOTOS = ("astronaut.png", "grace_hopper.jpg")


@functools.lru_cache(maxsize=4)
def _testdata_image(name: str) -> Image.Image:
    with Image.open(TESTDATA / name) as im:
        return im.convert("RGB")


@functools.lru_cache(maxsize=4)
def _face_in(name: str):
    """The face of a test photo (the same few images every time: found once)."""
    from characters.identity import find_faces  # lazy: dlib, only for inpainting

    faces = find_faces(_testdata_image(name))
    return faces[0] if faces else None


def _is_inpaint(fake: FakeRequest) -> bool:
    return fake.endpoint.endswith("/inpainting")


def _is_reference_pair(fake: FakeRequest) -> bool:
    """A multi-reference edit naming two people (scenes.reference): A's images, then B's."""
    urls = fake.arguments.get("image_urls") or []
    return len(urls) >= 2 and "two people" in str(fake.arguments.get("prompt", "")).lower()


def _is_training(fake: FakeRequest) -> bool:
    return "trainer" in fake.endpoint or "training" in fake.endpoint


class FalFake:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        run_seconds: float = 0.0,
        queue_polls: int = 1,
        running_polls: int = 1,
        training_logs: str = "steps",
        concurrency: int | None = None,
        render: bool = True,
        chaos: Chaos | None = None,
        training_seconds: float | None = None,
    ) -> None:
        self.chaos = chaos
        # Wall time a training spends IN_PROGRESS (default: run_seconds like any request).
        self.training_seconds = training_seconds
        # render=False: every image result is one pre-encoded picture, so a benchmark
        # measures our side, not the CPU this in-process fake spends drawing results.
        self.render = render
        self._stock: bytes | None = None
        self.delay = delay
        self.run_seconds = run_seconds
        self.queue_polls = queue_polls
        self.running_polls = running_polls
        # a key of TRAINING_LOG_SHAPES | "plain" (no figure) | "none" (no logs)
        self.training_logs = training_logs
        self.concurrency = concurrency
        self.nsfw_rules: list[Fault] = []  # outputs fal's safety checker flags (see nsfw)
        self.requests: dict[str, FakeRequest] = {}
        self.submissions: list[FakeRequest] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[str] = []
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []  # (op, url) for every request answered
        self.completion_errors: dict[str, str] = {}  # endpoint -> error on COMPLETED
        self.expired: set[str] = set()  # CDN URLs gone (see expire)
        self.lora_faces: dict[str, str] = {}  # LoRA path -> face photo in tests/testdata
        # Where trainer results are hosted: "cdn" (v3.fal.media) or "gcs" (fal's bucket).
        self.lora_host = "cdn"
        # The account: None works; 401 = wrong key; 403 = locked (exhausted balance).
        self.account_refusal: int | None = None
        # Uploads older than this (seconds, by time.time()) answer 404, as fal's media expire.
        self.upload_max_age: float | None = None
        self.uploaded_at: dict[str, float] = {}
        self.model_errors: list[dict[str, Any]] = []  # see model_error
        # The next N submits are queued, but their answer is lost on the way back (a read
        # timeout after fal accepted them): the worst case for paying twice.
        self.lost_submit_answers = 0
        # fal-ai/any-llm: Korean text found in the prompt -> the English answered for it
        self.llm_replies: dict[str, str] = {}
        self.llm_requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._draws: dict[str, int] = {}
        self._lock = threading.Lock()
        self.router = respx.mock(assert_all_called=False, assert_all_mocked=True)
        self._install()

    # --- public helpers --------------------------------------------------------------------
    def __enter__(self) -> FalFake:
        self.router.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.router.__exit__(*exc)

    def fail(
        self,
        op: str,
        *,
        endpoint: str | None = None,
        times: int = 1,
        status: int | None = 500,
        timeout: bool = False,
        malformed: bool = False,
        body: Any = None,
        headers: dict[str, str] | None = None,
        match=None,
    ) -> None:
        """The next `times` answers to `op` (submit|status|result|cancel|token|upload|file)
        fail: with an HTTP status, a read timeout, or a malformed body. `match` limits a
        submit fault to requests whose arguments satisfy it."""
        self.faults.append(
            Fault(
                op,
                endpoint,
                times,
                None if (timeout or malformed) else status,
                timeout,
                malformed,
                body,
                headers or {},
                match,
            )
        )

    def nsfw(self, *, match=None, endpoint: str | None = None, times: int = 10**9) -> None:
        """The next `times` image outputs (of `endpoint`, of requests whose arguments satisfy
        `match`) come back as fal's safety checker leaves them: a black picture and
        has_nsfw_concepts [true]."""
        self.nsfw_rules.append(Fault("nsfw", endpoint, times, match=match))

    def _flagged(self, fake: FakeRequest) -> bool:
        with self._lock:
            for rule in self.nsfw_rules:
                if rule.times > 0 and rule.endpoint in (None, fake.endpoint):
                    if rule.match is None or rule.match(fake.arguments):
                        rule.times -= 1
                        return True
        return False

    def _nsfw_output(self, fake: FakeRequest, width: int, height: int) -> dict[str, Any]:
        buf = io.BytesIO()
        Image.new("RGB", (width, height)).save(buf, "JPEG", quality=88)  # blacked out
        url = self.add_file(f"{fake.request_id}.jpg", buf.getvalue(), "image/jpeg")
        image = {"url": url, "width": width, "height": height, "content_type": "image/jpeg"}
        seed, prompt = fake.arguments.get("seed", 42), fake.arguments.get("prompt", "")
        return {"images": [image], "seed": seed, "has_nsfw_concepts": [True], "prompt": prompt}

    def complete_with_error(self, endpoint: str, error: str = "runner crashed") -> None:
        """Requests to `endpoint` finish with an infrastructure error (a crashed runner):
        status COMPLETED with error/error_type, result 500 with X-Fal-Error-Type."""
        self.completion_errors[endpoint] = error

    def model_error(
        self,
        *,
        type: str = "content_policy_violation",
        msg: str = "The content could not be processed because it contained sensitive content.",
        status: int = 422,
        retryable: bool | None = False,
        match=None,
        times: int = 1_000_000,
    ) -> None:
        """The model refuses matching requests after running them: COMPLETED with an error,
        then the result GET answers fal's typed error `{"detail": [{loc, msg, type, ...}]}`
        with `X-Fal-Retryable` (https://fal.ai/docs/model-apis/errors)."""
        rule = {"type": type, "msg": msg, "status": status, "retryable": retryable}
        self.model_errors.append({**rule, "match": match, "times": times})

    def lock_account(self, status: int = 403) -> None:
        """Every request answers as fal does for a locked account (403, exhausted balance) or
        a wrong key (401), until `unlock_account`."""
        self.account_refusal = status

    def unlock_account(self) -> None:
        self.account_refusal = None

    def _account_refused(self) -> httpx.Response | None:
        if self.account_refusal == 401:
            return httpx.Response(401, json={"detail": "Invalid API key"})
        if self.account_refusal:
            return httpx.Response(self.account_refusal, json={"detail": LOCKED})
        return None

    def expire(self, url: str) -> None:
        """A CDN file past its lifetime: GETs answer 404 and a request that names it as a
        LoRA completes with fal's download error."""
        self.expired.add(url)
        self.files.pop(url.rsplit("/files/", 1)[-1], None)

    def add_file(self, name: str, data: bytes, content_type: str = "application/octet-stream"):
        self.files[name] = (data, content_type)
        return f"{CDN}/files/{name}"

    def add_bucket_file(
        self, name: str, data: bytes, bucket: str = "fal-flux-lora"
    ) -> str:
        """A file in fal's storage.googleapis.com bucket (how trainer results often come)."""
        self.files[f"gcs/{bucket}/{name}"] = (data, "application/octet-stream")
        return f"{GCS}/{bucket}/{name}"

    def _upload_expired(self, url: str) -> bool:
        name = str(url).rsplit("/files/", 1)[-1]
        born = self.uploaded_at.get(name)
        return (
            self.upload_max_age is not None
            and born is not None
            and time.time() - born > self.upload_max_age
        )

    def _input_urls(self, arguments: dict[str, Any]) -> list[str]:
        urls = [arguments.get(k) for k in INPUT_KEYS]
        urls += list(arguments.get("image_urls") or [])
        loras = [lora for lora in arguments.get("loras") or [] if isinstance(lora, dict)]
        urls += [lora.get("path") for lora in loras]
        return [u for u in urls if isinstance(u, str)]

    def _failure(self, fake: FakeRequest) -> str | None:
        """Why a finished request failed (set once, when it completes), else None."""
        for url in self._input_urls(fake.arguments):
            if url in self.expired or self._upload_expired(url):
                fake.error_status = 422
                msg = f"Failed to download file from {url}: 404 Not Found"
                fake.error_body = {
                    "detail": [{"loc": ["body"], "msg": msg, "type": "file_download_error"}]
                }
                return msg
        for rule in self.model_errors:
            if rule["times"] > 0 and (rule["match"] is None or rule["match"](fake.arguments)):
                rule["times"] -= 1
                fake.error_status = rule["status"]
                detail = {
                    "loc": ["body", "prompt"],
                    "msg": rule["msg"],
                    "type": rule["type"],
                    "url": "https://docs.fal.ai/errors",
                    "input": fake.arguments.get("prompt"),
                }
                if rule["type"] == "content_policy_violation":
                    detail["ctx"] = {"categories": ["sexual"]}
                fake.error_body = {"detail": [detail]}
                if rule["retryable"] is not None:
                    fake.error_headers = {"x-fal-retryable": str(rule["retryable"]).lower()}
                return rule["msg"]
        error = self.completion_errors.get(fake.endpoint)
        if error:
            fake.error_status = 500
            fake.error_body = {"detail": error, "error_type": "runner_error"}
            fake.error_headers = {"x-fal-error-type": "runner_error"}
        return error

    def submitted(self, endpoint: str | None = None) -> list[FakeRequest]:
        return [r for r in self.submissions if endpoint is None or r.endpoint == endpoint]

    def count(self, op: str) -> int:
        return sum(1 for o, _ in self.calls if o == op)

    # --- routing ---------------------------------------------------------------------------
    def _install(self) -> None:
        r = self.router
        r.post(url__startswith=f"{REST}/storage/auth/token").mock(side_effect=self._token)
        r.post(f"{REST}/storage/upload/initiate").mock(side_effect=self._initiate)
        r.post(f"{CDN}/files/upload").mock(side_effect=self._upload)
        r.put(url__startswith=f"{CDN}/files/").mock(side_effect=self._put_file)
        r.get(url__startswith=f"{CDN}/files/").mock(side_effect=self._file)
        r.get(url__startswith=f"{GCS}/").mock(side_effect=self._bucket_file)
        r.route(url__startswith=QUEUE).mock(side_effect=self._queue)
        r.post(f"{RUN}/fal-ai/any-llm").mock(side_effect=self._llm)

    # --- webhooks (soak runs: fal reports finished requests, signed with Ed25519) -------------
    def sign_webhooks(self) -> None:
        """Publish a signing key at fal's JWKS URLs; `due_webhooks` then signs with it."""
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.webhook_key = Ed25519PrivateKey.generate()
        raw = self.webhook_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}
        for host in ("https://rest.fal.ai", "https://rest.alpha.fal.ai"):
            self.router.get(f"{host}/.well-known/jwks.json").respond(200, json=jwks)

    def due_webhooks(self) -> list[tuple[str, bytes, dict[str, str]]]:
        """(url, body, signed headers) for every request that asked for a webhook and has
        finished by fal's clock, once each. Runs requests nobody polls too (an orphan whose
        submit answer was lost), as fal's runners do."""
        import hashlib

        now = time.monotonic()
        due = []
        with self._lock:
            for fake in self.submissions:
                if not fake.webhook_url or fake.webhook_sent or fake.cancelled:
                    continue
                if fake.started_at is None:
                    if self.concurrency is not None and (
                        self._running_count(now) >= self.concurrency
                        or not self._first_waiting(fake)
                    ):
                        continue
                    fake.started_at = now
                if now - fake.started_at < self._run_seconds(fake):
                    continue
                fake.webhook_sent = True
                body = json.dumps(
                    {
                        "request_id": fake.request_id,
                        "gateway_request_id": fake.request_id,
                        "status": "OK",
                        "payload": None,
                    }
                ).encode()
                stamp = str(int(time.time()))
                digest = hashlib.sha256(body).hexdigest()
                message = "\n".join([fake.request_id, "soak-user", stamp, digest]).encode()
                headers = {
                    "content-type": "application/json",
                    "x-fal-webhook-request-id": fake.request_id,
                    "x-fal-webhook-user-id": "soak-user",
                    "x-fal-webhook-timestamp": stamp,
                    "x-fal-webhook-signature": self.webhook_key.sign(message).hex(),
                }
                due.append((fake.webhook_url, body, headers))
        return due

    def _fault(self, op: str, endpoint: str | None, arguments=None) -> httpx.Response | None:
        with self._lock:
            for fault in self.faults:
                if fault.match is not None and not fault.match(arguments or {}):
                    continue
                if fault.op == op and fault.times > 0 and fault.endpoint in (None, endpoint):
                    fault.times -= 1
                    break
            else:
                return None
        if fault.timeout:
            raise httpx.ReadTimeout("fake fal: read timed out")
        if fault.malformed:
            return httpx.Response(200, text="<html>upstream hiccup</html>")
        body = fault.body if fault.body is not None else {"detail": f"fake fal {fault.status}"}
        return httpx.Response(fault.status, json=body, headers=fault.headers)

    def _answer(
        self, op: str, url: str, endpoint: str | None = None, arguments=None
    ) -> httpx.Response | None:
        self.calls.append((op, url))
        if self.delay:
            time.sleep(self.delay)
        if op != "file" and (refused := self._account_refused()) is not None:
            return refused
        if self.chaos is not None and op != "submit" and self.chaos.applies(op):
            verdict = self.chaos.roll()
            if verdict == "error":
                return httpx.Response(503, json={"detail": "fake fal: service unavailable"})
            if verdict == "timeout":
                raise httpx.ReadTimeout("fake fal: read timed out")
        return self._fault(op, endpoint, arguments)

    def _queue(self, request: httpx.Request) -> httpx.Response:
        path = urlsplit(str(request.url)).path
        match = REQUEST_PATH.match(path)
        if request.method == "POST" and not match:
            return self._submit(request, path.lstrip("/"))
        if not match:
            return httpx.Response(404, json={"detail": "Not Found"})
        rid, rest = match["rid"], match["rest"] or ""
        owner_alias = f"{match['owner']}/{match['alias']}"
        fake = self.requests.get(rid)
        if fake is None or not fake.endpoint.startswith(owner_alias):
            return httpx.Response(404, json={"detail": "Request not found"})
        if request.method == "GET" and rest == "/status":
            return self._status(request, fake)
        if request.method == "GET" and rest == "":
            return self._result(request, fake)
        if request.method == "PUT" and rest == "/cancel":
            failed = self._answer("cancel", str(request.url), fake.endpoint)
            if failed is not None:
                return failed
            fake.cancelled = True
            return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})
        return httpx.Response(405, json={"detail": "Method Not Allowed"})

    def _submit(self, request: httpx.Request, endpoint: str) -> httpx.Response:
        try:
            arguments = json.loads(request.content or b"{}")
        except ValueError:
            return httpx.Response(422, json={"detail": [{"msg": "invalid json"}]})
        failed = self._answer("submit", str(request.url), endpoint, arguments)
        if failed is not None:
            return failed
        chaos = self.chaos if self.chaos is not None and self.chaos.applies("submit") else None
        verdict = chaos.roll() if chaos is not None else None  # a lost answer comes after
        if verdict == "error":
            return httpx.Response(500, json={"detail": "fake fal: internal error"})
        if not request.headers.get("authorization", "").startswith("Key "):
            return httpx.Response(401, json={"detail": "No credentials"})
        if (invalid := self._invalid(endpoint, arguments)) is not None:
            return invalid
        with self._lock:
            rid = f"req-{next(self._ids):05d}-{random.randrange(16**6):06x}"
            fake = FakeRequest(rid, endpoint, arguments, time.monotonic(), dict(request.headers))
            what = f"{endpoint}|{arguments.get('prompt', '')}"
            self._draws[what] = self._draws.get(what, 0) + 1
            fake.draw = f"{what}|{self._draws[what]}"
            if self.queue_polls == 0 and (
                self.concurrency is None
                or (
                    self._running_count(fake.submitted_at) < self.concurrency
                    and self._first_waiting(fake)
                )
            ):
                fake.started_at = fake.submitted_at  # an idle runner picks it up at once
            self.requests[rid] = fake
            self.submissions.append(fake)
            fake.webhook_url = request.url.params.get("fal_webhook")
            lost = self.lost_submit_answers > 0
            if lost:
                self.lost_submit_answers -= 1
        if verdict == "timeout" or lost:  # queued, but the answer is lost
            raise httpx.ReadTimeout("fake fal: read timed out", request=request)
        parts = endpoint.split("/")
        base = f"{QUEUE}/{parts[0]}/{parts[1]}/requests/{rid}"
        return httpx.Response(
            200,
            json={
                "request_id": rid,
                "gateway_request_id": rid,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    def _running_count(self, now: float) -> int:
        return sum(
            1
            for r in self.requests.values()
            if r.started_at is not None
            and not r.cancelled
            and now - r.started_at < self._run_seconds(r)
        )

    def _start_waiting(self, now: float) -> None:
        """An account of N slots: fal's runners take the oldest waiting requests as slots
        free up, whether or not anybody polls them (an orphan whose submit answer was lost
        runs too, and does not block the queue behind it forever)."""
        if self.concurrency is None:
            return
        waiting = [r for r in self.requests.values() if r.started_at is None and not r.cancelled]
        for request in sorted(waiting, key=lambda r: r.submitted_at):
            if self._running_count(now) >= self.concurrency or request.status_polls > 0:
                return  # full, or the head is polled: its own poll starts it
            request.started_at = now  # nobody polls it: fal's runner takes it all the same

    def _first_waiting(self, fake: FakeRequest) -> bool:
        """fal's queue is first in, first out: a free slot goes to the oldest request
        still waiting, whoever polls first."""
        return not any(
            r.started_at is None and not r.cancelled and r.submitted_at < fake.submitted_at
            for r in self.requests.values()
        )

    def _run_seconds(self, fake: FakeRequest) -> float:
        if self.training_seconds is not None and _is_training(fake):
            return self.training_seconds
        return self.run_seconds

    def _status(self, request: httpx.Request, fake: FakeRequest) -> httpx.Response:
        failed = self._answer("status", str(request.url), fake.endpoint)
        if failed is not None:
            return failed
        now = time.monotonic()
        with self._lock:
            fake.status_polls += 1
            if fake.cancelled:
                return httpx.Response(
                    200,
                    json={
                        "status": "COMPLETED",
                        "logs": None,
                        "error": "cancelled",
                        "error_type": "cancelled",
                    },
                )
            if fake.started_at is None:
                self._start_waiting(now)
                slots_free = self.concurrency is None or (
                    self._running_count(now) < self.concurrency and self._first_waiting(fake)
                )
                if fake.status_polls > self.queue_polls and slots_free:
                    fake.started_at = now
                else:
                    ahead = sum(
                        1
                        for r in self.requests.values()
                        if r.started_at is None
                        and r.submitted_at < fake.submitted_at
                        and not r.cancelled
                    )
                    # fal answers 202 while a request is queued or running, 200 once done.
                    return httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": ahead})
            running_polls = fake.status_polls - self.queue_polls
            done = (
                now - fake.started_at >= self._run_seconds(fake)
                and running_polls > self.running_polls
            )
            logs = self._logs(fake, 1.0 if done else self._fraction(fake, now))
            if not done:
                return httpx.Response(202, json={"status": "IN_PROGRESS", "logs": logs})
            body: dict[str, Any] = {
                "status": "COMPLETED",
                "logs": logs,
                "metrics": {"inference_time": round(now - fake.started_at, 3)},
            }
            error = fake.error or self._failure(fake)
            if error:
                fake.error = error
                answer = fake.error_body if isinstance(fake.error_body, dict) else {}
                kind = answer.get("error_type")
                if isinstance(answer.get("detail"), list) and answer["detail"]:
                    kind = answer["detail"][0].get("type")
                body.update(error=error, error_type=kind or "runner_error")
            return httpx.Response(200, json=body)

    def _fraction(self, fake: FakeRequest, now: float) -> float:
        if self._run_seconds(fake) > 0:
            return min(0.99, (now - fake.started_at) / self._run_seconds(fake))
        return min(0.99, (fake.status_polls - self.queue_polls) / (self.running_polls + 1))

    def _logs(self, fake: FakeRequest, fraction: float) -> list[dict[str, Any]] | None:
        ts = "2026-01-01T00:00:00Z"
        if not _is_training(fake):
            return [
                {"message": "Generating...", "level": "INFO", "source": "user", "timestamp": ts}
            ]
        if self.training_logs == "none":
            return None
        total = int(fake.arguments.get("steps") or 1000)
        logs = [
            {"message": "Preprocessing images", "level": "INFO", "source": "user", "timestamp": ts}
        ]
        step = int(total * fraction)
        if self.training_logs in TRAINING_LOG_SHAPES and step:
            line = TRAINING_LOG_SHAPES[self.training_logs].format(
                step=step, total=total, pct=100 * step / total, bar="#" * (10 * step // total)
            )
            logs.append({"message": line, "level": "INFO", "source": "user", "timestamp": ts})
        elif self.training_logs == "plain":
            logs.append(
                {
                    "message": "Training in progress",
                    "level": "INFO",
                    "source": "user",
                    "timestamp": ts,
                }
            )
        return logs

    def _result(self, request: httpx.Request, fake: FakeRequest) -> httpx.Response:
        failed = self._answer("result", str(request.url), fake.endpoint)
        if failed is not None:
            return failed
        if fake.started_at is None or fake.cancelled:
            return httpx.Response(400, json={"detail": "Request is still in progress"})
        if fake.error:
            return httpx.Response(
                fake.error_status, json=fake.error_body, headers=fake.error_headers
            )
        if fake.output is None:
            fake.output = self._make_output(fake)
        return httpx.Response(200, json=fake.output)

    # --- outputs ---------------------------------------------------------------------------
    def _make_output(self, fake: FakeRequest) -> dict[str, Any]:
        if _is_training(fake):
            weights = build_safetensors({"lora.weight": [0.5] * 8}, {"fake": "true"})
            if self.lora_host == "gcs":
                name = f"{fake.request_id}_pytorch_lora_weights.safetensors"
                lora_url = self.add_bucket_file(name, weights)
            else:
                lora_url = self.add_file(f"{fake.request_id}.safetensors", weights)
            return {
                "diffusers_lora_file": {
                    "url": lora_url,
                    "content_type": "application/octet-stream",
                    "file_name": "pytorch_lora_weights.safetensors",
                    "file_size": len(weights),
                },
                "config_file": {
                    "url": self.add_file(f"{fake.request_id}.json", b"{}", "application/json")
                },
            }
        width, height = requested_size(fake.arguments)
        if self._flagged(fake):
            return self._nsfw_output(fake, width, height)
        if not self.render:
            return self._stock_output(fake, width, height)
        image = None if _is_inpaint(fake) or _is_reference_pair(fake) else self._source(
            fake.arguments
        )
        own = self._own_picture(fake, (width, height)) if image is None else None
        if own is not None:
            image, (width, height) = own, own.size
        elif image is None:
            seed = sum((fake.draw or fake.request_id).encode())
            image = Image.new("RGB", (width, height), (seed % 256, 120, 200))
        else:
            image = self._vary(image, fake, (width, height))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=88)
        url = self.add_file(f"{fake.request_id}.jpg", buf.getvalue(), "image/jpeg")
        return {
            "images": [
                {"url": url, "width": width, "height": height, "content_type": "image/jpeg"}
            ],
            "seed": fake.arguments.get("seed", 42),
            "has_nsfw_concepts": [False],
            "prompt": fake.arguments.get("prompt", ""),
            "timings": {"inference": 0.1},
        }

    # --- faces for LoRA inference, and inpainting (issue 16) -------------------------------
    # A LoRA "shows" a real face so the identity checks run: each LoRA's face photo
    # (lora_faces[path], default astronaut.png), two side by side for two LoRAs (first
    # left). Below weak_scale a LoRA is too weak to carry the likeness and shows the other
    # test face (a stranger), which is what the scale sweep is there to catch.
    weak_scale = 0.7
    INPAINT_REQUIRED = ("prompt", "image_url", "mask_url")
    # Multi-reference edit endpoints and how many image_urls each takes (FAL.md §5).
    MAX_IMAGE_URLS = {"fal-ai/flux-2/edit": 4, "fal-ai/bytedance/seedream/v4/edit": 10}

    def _invalid(self, endpoint: str, arguments: dict[str, Any]) -> httpx.Response | None:
        """fal's typed validation error (422) for an inpainting request missing its inputs,
        or for more references than an edit endpoint takes (MAX_IMAGE_URLS)."""
        urls = arguments.get("image_urls")
        limit = self.MAX_IMAGE_URLS.get(endpoint)
        if limit is not None and isinstance(urls, list) and len(urls) > limit:
            detail = [{"loc": ["body", "image_urls"], "msg": f"List should have at most {limit} "
                       "items", "type": "too_long", "input": urls, "ctx": {"max_length": limit}}]
            return httpx.Response(422, json={"detail": detail})
        if not endpoint.endswith("/inpainting"):
            return None
        detail = [
            {"loc": ["body", name], "msg": "Field required", "type": "missing",
             "input": arguments}
            for name in self.INPAINT_REQUIRED
            if not arguments.get(name)
        ]
        strength = arguments.get("strength", 0.85)
        if not isinstance(strength, int | float) or not 0.01 <= strength <= 1:
            detail.append({"loc": ["body", "strength"], "msg": "Input should be <= 1",
                           "type": "less_than_equal", "input": strength, "ctx": {"le": 1}})
        return httpx.Response(422, json={"detail": detail}) if detail else None

    def _own_picture(self, fake: FakeRequest, size: tuple[int, int]) -> Image.Image | None:
        if _is_inpaint(fake):
            return self._inpainted(fake.arguments)
        loras = fake.arguments.get("loras") or []
        if _is_reference_pair(fake):  # A's first reference left, B's first right
            urls = fake.arguments["image_urls"]
            faces = [self._file_image(urls[0]), self._file_image(urls[len(urls) // 2])]
            if None in faces:
                return None
        elif not loras:
            return None
        else:
            faces = [self._face_photo(lora) for lora in loras[:2]]
        width, height = size
        part = width // len(faces)
        canvas = Image.new("RGB", size, (236, 232, 226))
        for i, photo in enumerate(faces):
            canvas.paste(ImageOps.fit(photo, (part, height), centering=(0.5, 0.35)), (i * part, 0))
        return canvas

    def _face_photo(self, lora: dict[str, Any]) -> Image.Image:
        return _testdata_image(self._face_name(lora))

    def _face_name(self, lora: dict[str, Any]) -> str:
        name = self.lora_faces.get(str(lora.get("path")), FACE_PHOTOS[0])
        if float(lora.get("scale", 1.0)) < self.weak_scale and name in FACE_PHOTOS:
            name = next(n for n in FACE_PHOTOS if n != name)  # a stranger
        return name

    def _file_image(self, url: Any, mode: str = "RGB") -> Image.Image | None:
        name = str(url or "").rsplit("/files/", 1)[-1]
        if name not in self.files:
            return None
        try:
            with Image.open(io.BytesIO(self.files[name][0])) as im:
                return im.convert(mode)
        except OSError:
            return None

    def _inpainted(self, arguments: dict[str, Any]) -> Image.Image | None:
        """Repaint the white part of the mask with the LoRA's face: the face photo scaled and
        placed so its face lands on the face the mask covers, blended through the mask."""
        from characters.identity import find_faces  # lazy: dlib, only for inpainting

        source = self._file_image(arguments.get("image_url"))
        mask = self._file_image(arguments.get("mask_url"), "L")
        loras = arguments.get("loras") or []
        if source is None or mask is None or not loras:
            return source
        mask = mask.resize(source.size)
        box = mask.point(lambda v: 255 if v > 127 else 0).getbbox()
        targets = find_faces(source.crop(box)) if box else []
        photo = self._face_photo(loras[0])
        face = _face_in(self._face_name(loras[0]))
        if not targets or face is None:
            return source
        target = targets[0]
        scale = target.width / face.width
        layer = source.copy()
        scaled = photo.resize((max(1, round(photo.width * scale)),
                               max(1, round(photo.height * scale))))
        layer.paste(scaled, (round(box[0] + target.left - face.left * scale),
                             round(box[1] + target.top - face.top * scale)))
        return Image.composite(layer, source, mask)

    def _stock_output(self, fake: FakeRequest, width: int, height: int) -> dict[str, Any]:
        if self._stock is None:
            buf = io.BytesIO()
            Image.new("RGB", (width, height), (200, 190, 180)).save(buf, "JPEG", quality=88)
            self._stock = buf.getvalue()
        url = self.add_file(f"{fake.request_id}.jpg", self._stock, "image/jpeg")
        image = {"url": url, "width": width, "height": height, "content_type": "image/jpeg"}
        return {"images": [image], "seed": 1, "has_nsfw_concepts": [False], "prompt": ""}

    @staticmethod
    def _vary(image: Image.Image, fake: FakeRequest, size: tuple[int, int]) -> Image.Image:
        # Like a real edit model: a different framing of the reference per request, drawn
        # from FakeRequest.draw rather than the random request id.
        mirror = "left" in str(fake.arguments.get("prompt", ""))
        return vary_photo(image, random.Random(fake.draw or fake.request_id), size, mirror=mirror)

    def _source(self, arguments: dict[str, Any]) -> Image.Image | None:
        for url in [arguments.get("image_url"), *(arguments.get("image_urls") or [])]:
            name = str(url or "").rsplit("/files/", 1)[-1]
            if url and name in self.files:
                try:
                    with Image.open(io.BytesIO(self.files[name][0])) as im:
                        return im.convert("RGB")
                except OSError:
                    return None
        return None

    # --- storage ---------------------------------------------------------------------------
    def _llm(self, request: httpx.Request) -> httpx.Response:
        """fal-ai/any-llm through `fal_client.run`: {model, prompt, system_prompt} -> {output}.
        Faults: `fake.fail("llm", ...)`."""
        arguments = json.loads(request.content or b"{}")
        failed = self._answer("llm", str(request.url), "fal-ai/any-llm", arguments)
        if failed is not None:
            return failed
        if not arguments.get("model") or not arguments.get("prompt"):
            return httpx.Response(422, json={"detail": [{"msg": "field required"}]})
        self.llm_requests.append(arguments)
        prompt = arguments["prompt"]
        found = [english for korean, english in self.llm_replies.items() if korean in prompt]
        output = ", ".join(found) or f"english prompt #{sum(prompt.encode()) % 1000}"
        return httpx.Response(200, json={"output": output, "partial": False, "error": None})

    def _token(self, request: httpx.Request) -> httpx.Response:
        failed = self._answer("token", str(request.url))
        if failed is not None:
            return failed
        return httpx.Response(
            200,
            json={
                "token": "cdn-token",
                "token_type": "Bearer",
                "base_url": CDN,
                "expires_at": "2099-01-01T00:00:00+00:00",
            },
        )

    def _initiate(self, request: httpx.Request) -> httpx.Response:
        failed = self._answer("upload", str(request.url))
        if failed is not None:
            return failed
        body = json.loads(request.content or b"{}")
        name = f"gcs-{len(self.files)}-{body.get('file_name', 'upload.bin')}"
        return httpx.Response(
            200, json={"upload_url": f"{CDN}/files/{name}", "file_url": f"{CDN}/files/{name}"}
        )

    def _put_file(self, request: httpx.Request) -> httpx.Response:
        name = urlsplit(str(request.url)).path.rsplit("/", 1)[-1]
        self.files[name] = (request.content, request.headers.get("content-type", ""))
        self.uploads.append(name)
        self.uploaded_at[name] = time.time()
        return httpx.Response(200)

    def _upload(self, request: httpx.Request) -> httpx.Response:
        failed = self._answer("upload", str(request.url))
        if failed is not None:
            return failed
        if request.headers.get("authorization") != "Bearer cdn-token":
            return httpx.Response(401, json={"detail": "bad CDN token"})
        name = f"up-{len(self.files):04d}-{request.headers.get('x-fal-file-name', 'file')}"
        self.files[name] = (request.content, request.headers.get("content-type", ""))
        self.uploads.append(name)
        self.uploaded_at[name] = time.time()
        return httpx.Response(200, json={"access_url": f"{CDN}/files/{name}"})

    def _bucket_file(self, request: httpx.Request) -> httpx.Response:
        failed = self._answer("file", str(request.url))
        if failed is not None:
            return failed
        key = "gcs/" + urlsplit(str(request.url)).path.lstrip("/")
        if key not in self.files:  # GCS answers 403 for what you may not see, as for gone
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
        data, content_type = self.files[key]
        return httpx.Response(200, content=data, headers={"content-type": content_type})

    def _file(self, request: httpx.Request) -> httpx.Response:
        failed = self._answer("file", str(request.url))
        if failed is not None:
            return failed
        name = urlsplit(str(request.url)).path.rsplit("/", 1)[-1]
        if name not in self.files or self._upload_expired(str(request.url)):
            return httpx.Response(404, json={"detail": "File not found"})
        data, content_type = self.files[name]
        return httpx.Response(200, content=data, headers={"content-type": content_type})
