"""One simulated user going through the whole product over the REST API, as a script would:
upload → style → 24 cuts → curate → package → train (→ 3 test images) → a scene.

Every step goes through the real web server over loopback with the user's Bearer token.
A flow ends "finished" or "failed" with the cause the product reported; it never ends
without one (a step that does not settle before its deadline is itself a failure)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MIN_CUTS = 15


class FlowFailed(Exception):
    """The product reported a failure; the message is its cause."""


@dataclass
class FlowResult:
    user: str
    outcome: str = "running"  # finished | failed
    cause: str = ""
    steps: list[str] = field(default_factory=list)
    characters: int = 0
    seconds: float = 0.0


class UserFlow:
    def __init__(
        self,
        base_url: str,
        username: str,
        token: str,
        photo: Path,
        *,
        trainings: int = 1,
        poll: float = 1.0,
        step_deadline: float = 600.0,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(60.0, connect=5.0),
        )
        self.photo = photo
        self.trainings = trainings
        self.poll = poll
        self.step_deadline = step_deadline
        self.result = FlowResult(user=username)

    # --- HTTP ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, ok=(200, 201, 202), **kwargs) -> dict:
        """One API call; a 5xx from our own server or a dropped connection is retried a few
        times (a user would press the button again), anything else is the answer."""
        for attempt in range(5):
            try:
                response = self.http.request(method, f"/api{path}", **kwargs)
            except httpx.TransportError as exc:
                cause = f"{method} {path}: {exc.__class__.__name__}"
            else:
                if response.status_code in ok:
                    return response.json()
                detail = _detail(response)
                if response.status_code < 500:
                    raise FlowFailed(f"{method} {path} → {response.status_code}: {detail}")
                cause = f"{method} {path} → {response.status_code}: {detail}"
            time.sleep(1 + attempt)
        raise FlowFailed(cause)

    def _until(self, what: str, read, settled) -> dict:
        deadline = time.monotonic() + self.step_deadline
        while True:
            body = read()
            if settled(body):
                return body
            if time.monotonic() > deadline:
                raise FlowFailed(f"{what} did not settle in {self.step_deadline:.0f} s: {body}")
            time.sleep(self.poll)

    # --- the flow --------------------------------------------------------------------------
    def run(self) -> FlowResult:
        started = time.monotonic()
        try:
            self._flow()
            self.result.outcome = "finished"
        except FlowFailed as exc:
            self.result.outcome, self.result.cause = "failed", str(exc)
        except Exception as exc:  # a bug in the driver must still be reported, not lost
            self.result.outcome = "failed"
            self.result.cause = f"driver error: {exc.__class__.__name__}: {exc}"
        finally:
            self.result.seconds = round(time.monotonic() - started, 1)
            self.http.close()
        return self.result

    def _step(self, name: str) -> None:
        self.result.steps.append(name)

    def _flow(self) -> None:
        # One creation session per character: a user who trains several at once makes the
        # sessions side by side, then starts every training together (the third of three
        # must wait for a free slot: at most MAX_CONCURRENT_TRAINING per user).
        with ThreadPoolExecutor(max_workers=self.trainings) as pool:
            sessions = list(pool.map(self._session, range(self.trainings)))
        characters = []
        for n, session_id in enumerate(sessions):
            self._step("package")
            prepared = self._call(
                "POST",
                "/character/prepare-training-data",
                json={"session_id": session_id, "character_name": f"박사장{n + 1}"},
            )
            self._step("train")
            started = self._call(
                "POST",
                "/character/start-training",
                json={"character_id": prepared["character_id"], "confirm_cost": True},
            )
            characters.append((prepared["character_id"], started["task_id"]))
        for _character, task_id in characters:
            body = self._until(
                "training",
                lambda t=task_id: self._call("GET", f"/character/training-status/{t}"),
                lambda b: b["status"] in ("completed", "failed"),
            )
            if body["status"] == "failed":
                raise FlowFailed(f"training failed: {body['message']}")
            self.result.characters += 1
        self._step("test images")
        samples = self._until(
            "test images",
            lambda: [j for j in self._call("GET", "/jobs/") if j["kind"] == "samples"],
            lambda js: len(js) >= len(characters) and all(j["finished_at"] for j in js),
        )
        for job in samples:
            if job["state"] != "succeeded":
                raise FlowFailed(f"test images {job['state']}: {job['error_message']}")
        for character_id, _task in characters:
            detail = self._call("GET", f"/character/{character_id}")
            if detail["status"] != "active" or len(detail["sample_images"]) < 3:
                notes = "; ".join(j["error_message"] for j in samples if j["error_message"])
                raise FlowFailed(
                    f"character {detail['status']} with {len(detail['sample_images'])} of 3 "
                    f"test images ({notes or detail['failure_message']})"
                )
        self._step("scene")
        scene = self._call(
            "POST",
            "/scene/generate-with-character",
            json={
                "character_id": detail["id"],
                "expression": "설명하는",
                "location": "사무실",
                "situation": "종합소득세 신고 기한을 설명한다",
            },
        )
        done = self._until(
            "scene",
            lambda: self._call("GET", f"/scene/{scene['scene_id']}"),
            lambda b: b["status"] in ("completed", "failed"),
        )
        if done["status"] == "failed":
            raise FlowFailed(f"scene failed: {done['error']}")

    def _session(self, _n: int) -> str:
        """Upload → style → 24 cuts (failed ones regenerated once) → curation; the session."""
        self._step("upload")
        with self.photo.open("rb") as fh:
            photo = self._call(
                "POST",
                "/character/upload-photo",
                data={"consent": "true"},
                files={"photo": (self.photo.name, fh, "image/png")},
            )
        self._step("style")
        session = self._call(
            "POST", "/character/select-style", json={"photo_id": photo["photo_id"]}
        )
        session_id = session["session_id"]
        self._step("generate")
        task = self._call("POST", "/character/generate-24-cuts", json={"session_id": session_id})
        status = self._cuts(task["task_id"])
        selected = [c["id"] for c in status["cuts"] if c["state"] == "completed"]
        if len(selected) < MIN_CUTS:
            self._step("regenerate")
            for cut in status["cuts"]:
                if cut["state"] == "failed":
                    self._call(
                        "POST",
                        "/character/regenerate-cut",
                        json={"session_id": session_id, "cut_id": cut["number"]},
                    )
            status = self._cuts(task["task_id"])
            selected = [c["id"] for c in status["cuts"] if c["state"] == "completed"]
        if len(selected) < MIN_CUTS:
            raise FlowFailed(f"only {len(selected)} cuts generated: {status['message']}")
        self._step("curate")
        self._call(
            "POST",
            "/character/select-cuts",
            json={"session_id": session_id, "selected_cut_ids": selected},
        )
        return session_id

    def _cuts(self, task_id: str) -> dict:
        """Wait until every cut is finished (each completed or failed) and quality-checked."""
        return self._until(
            "cut generation",
            lambda: self._call("GET", f"/character/generation-status/{task_id}"),
            lambda b: (
                b["status"] != "generating"
                and all(c["state"] != "completed" or c["quality_ok"] is not None for c in b["cuts"])
            ),
        )


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:200]
