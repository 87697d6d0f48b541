"""fal.ai through fal-client: the production backend.

fal-client does its own retries for 408/409/429 and nginx 5xx; everything it finally raises
is mapped to our BackendError family here, so the job engine sees one vocabulary.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any
from urllib.parse import urlsplit

import fal_client
import httpx
from django.conf import settings
from fal_client.auth import MissingCredentialsError

from webtoon.logsafety import redact
from webtoon.per_process import per_process

from .base import (
    AccountRefused,
    BackendError,
    ContentRefused,
    DownloadRefused,
    ImageBackend,
    InputInvalid,
    RemoteFileGone,
    RemoteRejected,
    RemoteStatus,
    RemoteUnavailable,
    SubmitUnknown,
)

DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _download_client() -> httpx.Client:
    """One client per process for result downloads: a new client loads the CA bundle again
    (tens of ms of CPU under the GIL, 24 times for a cut set) and opens new connections to
    the same fal media hosts."""
    return per_process(
        "fal-downloads", lambda: httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=False)
    )


# A 403 about a file (a LoRA or image URL fal could not fetch) names it; any other 403
# ("User is locked. Reason: Exhausted balance ...") concerns the whole account.
FILE_WORDS = re.compile(r"https?://|\bfile\b|download|weights|image_url|\.safetensors", re.I)
# Errors fal describes as infrastructure (runner crashed, timeouts): worth another try.
INFRA_TYPES = {"runner_error", "internal_error", "timeout", "runner_timeout", "server_error"}


def _details(message: Any) -> list[dict]:
    """fal's typed model errors: `detail` as a list of {loc, msg, type, ...}."""
    if isinstance(message, list):
        return [d for d in message if isinstance(d, dict)]
    if isinstance(message, dict):
        return [message]
    return []


def _header_true(headers: dict, *names: str) -> bool | None:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for name in names:
        if name in lowered:
            return str(lowered[name]).strip().lower() in ("1", "true", "yes")
    return None


def _map_error(exc: Exception) -> BackendError:
    if isinstance(exc, fal_client.FalClientHTTPError):
        return map_http_error(exc.status_code, exc.message, exc.response_headers, exc.error_type)
    if isinstance(exc, httpx.HTTPStatusError):  # fal-client's storage calls raise these
        try:
            body = exc.response.json()
        except ValueError:
            body = exc.response.text
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return map_http_error(exc.response.status_code, detail, dict(exc.response.headers))
    if isinstance(exc, httpx.TimeoutException):
        return RemoteUnavailable(f"fal timeout: {exc.__class__.__name__}")
    if isinstance(exc, httpx.TransportError):
        return RemoteUnavailable(f"fal connection error: {exc.__class__.__name__}")
    if isinstance(exc, MissingCredentialsError):
        return AccountRefused("FAL_KEY is not set")
    # KeyError / ValueError / JSONDecodeError: a reply that does not follow fal's protocol.
    return RemoteUnavailable(redact(f"malformed fal reply: {exc.__class__.__name__}: {exc}"))


def map_http_error(
    code: int, detail: Any, headers: dict | None = None, error_type: str | None = None
) -> BackendError:
    """fal's answer, read by what it says (FAL.md §5): account refusals, typed model errors
    (`detail[].type`, `X-Fal-Retryable`), infrastructure, files gone."""
    details = _details(detail)
    types = {str(d.get("type") or "") for d in details}
    msgs = [str(d.get("msg")) for d in details if d.get("msg")]
    text = "; ".join(msgs) if msgs else str(detail)
    # fal's reply is shown to users and support: never let it echo our key back.
    message = redact(f"fal {code}: {text}" + (f" [{', '.join(sorted(types))}]" if types else ""))
    user_message = redact("; ".join(msgs))[:500]
    retry_header = _header_true(headers or {}, "x-fal-retryable", "x-fal-needs-retry")
    if code == 401 or (code == 403 and not FILE_WORDS.search(str(detail))):
        return AccountRefused(message, status_code=code)
    if "content_policy_violation" in types:
        return ContentRefused(message, status_code=code, user_message=user_message)
    if retry_header is True or (error_type or "") in INFRA_TYPES or types & INFRA_TYPES:
        return RemoteUnavailable(message, status_code=code)
    if code in (408, 409, 429) or code >= 500:
        if retry_header is False:
            return RemoteRejected(message, status_code=code, user_message=user_message)
        return RemoteUnavailable(message, status_code=code)
    if code in (403, 404, 410):
        return RemoteFileGone(message, status_code=code)
    if code == 422 and details:
        return InputInvalid(message, status_code=code, user_message=user_message)
    return RemoteRejected(message, status_code=code, user_message=user_message)


def _clean_logs(logs) -> list:
    """fal's log lines (the last one is shown as progress), with any secret scrubbed."""
    return [
        {**line, "message": redact(line["message"])}
        if isinstance(line, dict) and isinstance(line.get("message"), str)
        else line
        for line in logs or []
    ]


def _answer_lost(exc: BaseException | None) -> bool:
    """The request went out but no answer came back: fal may have queued it. A refused or
    timed-out connection never reached fal and is safe to try again."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return False
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


class FalBackend(ImageBackend):
    name = "fal"
    is_real = True

    def __init__(self, key: str) -> None:
        self.client = fal_client.SyncClient(key=key or None)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BackendError:
            raise
        except (
            fal_client.FalClientError,
            httpx.HTTPError,
            MissingCredentialsError,
            KeyError,
            ValueError,
            TypeError,
            json.JSONDecodeError,
        ) as exc:
            raise _map_error(exc) from exc

    def submit(self, endpoint, arguments, *, webhook_url=None, start_timeout=None) -> str:
        # start_timeout is sent as X-Fal-Request-Timeout, which also stops fal-client from
        # silently re-POSTing after a read timeout (a lost answer could be a second paid job).
        try:
            handle = self._call(
                self.client.submit,
                endpoint,
                arguments,
                webhook_url=webhook_url,
                start_timeout=max(2.0, start_timeout) if start_timeout else None,
            )
        except RemoteUnavailable as exc:
            if _answer_lost(exc.__cause__):
                raise SubmitUnknown(f"fal submit answer lost: {exc}") from exc
            raise
        return handle.request_id

    def status(self, endpoint, request_id) -> RemoteStatus:
        st = self._call(self.client.status, endpoint, request_id, with_logs=True)
        if isinstance(st, fal_client.Queued):
            return RemoteStatus("queued", queue_position=st.position)
        if isinstance(st, fal_client.InProgress):
            return RemoteStatus("running", logs=_clean_logs(st.logs))
        if isinstance(st, fal_client.Completed):
            error = st.error or (st.error_type and f"fal error: {st.error_type}") or None
            error = None if error is None else redact(error)
            return RemoteStatus("completed", logs=_clean_logs(st.logs), error=error)
        raise RemoteUnavailable(redact(f"unknown fal status {st!r}"))

    def result(self, endpoint, request_id) -> dict[str, Any]:
        out = self._call(self.client.result, endpoint, request_id)
        if not isinstance(out, dict):
            raise RemoteUnavailable("malformed fal result: not a JSON object")
        return out

    def cancel(self, endpoint, request_id) -> None:
        self._call(self.client.cancel, endpoint, request_id)

    def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        return self._call(self.client.upload, data, content_type, file_name)

    def download(self, url: str, dest: IO[bytes], *, max_bytes: int) -> int:
        return download_https(
            url,
            dest,
            max_bytes=max_bytes,
            hosts=settings.FAL_FILE_HOSTS,
            prefixes=settings.FAL_FILE_PREFIXES,
        )

    def run_llm(self, prompt: str, *, system_prompt: str, model: str, timeout: float) -> str:
        # One synchronous POST to fal.run (no queue): a short answer a page waits for.
        arguments = {"model": model, "prompt": prompt, "system_prompt": system_prompt}
        out = self._call(self.client.run, LLM_ENDPOINT, arguments, timeout=timeout)
        if not isinstance(out, dict) or not isinstance(out.get("output"), str):
            raise RemoteUnavailable("malformed fal LLM reply: no output text")
        return out["output"]


LLM_ENDPOINT = "fal-ai/any-llm"


def _host_allowed(host: str, hosts: list[str]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def _prefix_allowed(host: str, path: str, prefixes: list[str]) -> bool:
    """fal's buckets on a shared host (storage.googleapis.com/fal-flux-lora/...): the host
    and the path prefix must both match, never the whole host. Paths with dot segments or
    encoded slashes are refused, so a prefix cannot be climbed out of."""
    if ".." in path or "%2f" in path.lower() or "%2e" in path.lower() or "//" in path:
        return False
    where = f"{host}{path}"
    for prefix in prefixes:
        prefix_host, _, prefix_path = prefix.partition("/")
        if host == prefix_host.lower() and where.startswith(f"{prefix_host.lower()}/{prefix_path}"):
            return True
    return False


def url_allowed(url: str, hosts: list[str], prefixes: list[str] = ()) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.username or parts.password or parts.port not in (None, 443):
        return False
    return _host_allowed(host, hosts) or _prefix_allowed(host, parts.path, list(prefixes))


def download_https(
    url: str, dest: IO[bytes], *, max_bytes: int, hosts: list[str], prefixes: list[str] = ()
) -> int:
    """Stream `url` into `dest`: https only, allowed hosts (or host + path prefixes) only, no
    redirects, size-capped."""
    parts = urlsplit(url)
    if not url_allowed(url, hosts, prefixes):
        raise DownloadRefused(
            f"refusing to download from {parts.scheme}://{parts.hostname}{parts.path[:60]}"
        )
    try:
        with _download_client().stream("GET", url) as r:
            if r.status_code in (403, 404, 410):
                raise RemoteFileGone(f"file gone ({r.status_code})", status_code=r.status_code)
            if r.status_code >= 500 or r.status_code == 429:
                raise RemoteUnavailable(f"file host {r.status_code}", status_code=r.status_code)
            if r.status_code != 200:
                raise DownloadRefused(f"unexpected answer {r.status_code} for file")
            declared = int(r.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise DownloadRefused(f"file is {declared} bytes, over the {max_bytes} cap")
            written = 0
            for chunk in r.iter_bytes(1024 * 1024):
                written += len(chunk)
                if written > max_bytes:
                    raise DownloadRefused(f"file is over the {max_bytes} byte cap")
                dest.write(chunk)
            return written
    except httpx.TimeoutException as exc:
        raise RemoteUnavailable(f"file download timeout: {exc.__class__.__name__}") from exc
    except httpx.TransportError as exc:
        raise RemoteUnavailable(f"file download failed: {exc.__class__.__name__}") from exc
