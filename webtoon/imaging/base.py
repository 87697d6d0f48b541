from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import IO, Any, Literal

RemoteState = Literal["queued", "running", "completed"]


@dataclass
class RemoteStatus:
    state: RemoteState
    queue_position: int | None = None
    # Every log entry so far ({"message", "level", "timestamp"}); callers track what they saw.
    logs: list[dict[str, Any]] = field(default_factory=list)
    # Set when the remote side finished with an error (fal's Completed.error).
    error: str | None = None


class BackendError(Exception):
    """A remote operation failed. `retryable` says whether trying again may help."""

    retryable = True
    code = "remote_error"

    def __init__(
        self, message: str, *, status_code: int | None = None, user_message: str = ""
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        # What fal said that a user may read (a model's `msg`), already scrubbed.
        self.user_message = user_message


class RemoteUnavailable(BackendError):
    """5xx, timeouts, connection errors, malformed replies: worth another try."""

    code = "remote_unavailable"


class SubmitUnknown(BackendError):
    """A submit whose answer was lost after the request went out (a read timeout, a dropped
    connection): fal may have queued it. Never retried automatically, so work is never paid
    for twice; the call fails with this code for support to see."""

    retryable = False
    code = "submit_unknown"


class RemoteRejected(BackendError):
    """The service refused the request (4xx): the same request will fail again."""

    retryable = False
    code = "remote_rejected"


class ContentRefused(RemoteRejected):
    """fal's model refused the input (`content_policy_violation`): the same input fails the
    same way, so it is never resubmitted; `user_message` is fal's `msg`."""

    code = "content_policy"


class InputInvalid(RemoteRejected):
    """A typed validation error from fal's model (422 `detail[].type`): not retryable."""

    code = "input_invalid"


class AccountRefused(BackendError):
    """401 (wrong key) or 403 not about a file ("User is locked. Reason: Exhausted balance"):
    the *account* cannot work until an operator acts. Nothing about the user's input; the
    engine holds every job (circuit breaker) instead of failing it."""

    retryable = False
    code = "account_refused"


class RemoteFileGone(RemoteRejected):
    """A file URL answered 404/403: it expired or never existed."""

    code = "file_gone"


class DownloadRefused(RemoteRejected):
    """We will not fetch this URL: wrong scheme or host, or the file is over the size cap."""

    code = "download_refused"


class ImageBackend(abc.ABC):
    name: str
    #: False for the offline backend: its pictures are not real generation.
    is_real: bool

    @abc.abstractmethod
    def submit(
        self,
        endpoint: str,
        arguments: dict[str, Any],
        *,
        webhook_url: str | None = None,
        start_timeout: float | None = None,
    ) -> str:
        """Queue a request and return its request id; returns fast. `start_timeout`: seconds
        the service may keep it queued before giving up (our deadline for the work).
        Raises SubmitUnknown when the request may have been queued but the answer was lost."""

    @abc.abstractmethod
    def status(self, endpoint: str, request_id: str) -> RemoteStatus: ...

    @abc.abstractmethod
    def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        """The finished request's output JSON (fal's shape)."""

    @abc.abstractmethod
    def cancel(self, endpoint: str, request_id: str) -> None: ...

    @abc.abstractmethod
    def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        """Store bytes where the service can fetch them; returns that URL."""

    @abc.abstractmethod
    def download(self, url: str, dest: IO[bytes], *, max_bytes: int) -> int:
        """Copy a result file into `dest` (streamed, size-capped); returns the byte count."""

    def run_llm(self, prompt: str, *, system_prompt: str, model: str, timeout: float) -> str:
        """One short text completion (FAL.md §5, `fal-ai/any-llm`), e.g. Korean scene words
        → an English image prompt. Callers fall back on any BackendError; a backend with no
        language model (offline) refuses."""
        raise RemoteRejected(f"{self.name}: no language model")
