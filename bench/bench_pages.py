"""Benchmark: My Characters and the scene gallery with 500 characters and 500 scenes.

One user owns 500 characters (480 active with a version and 3 test images, 10 training,
10 failed; each with its own photo, training job, LoRA and training ZIP) and 500 scenes
(prompt mode, one character, two characters; each with its job, call and image); a second
user owns 1 character and 1 scene. Every file a row names is written to the media folder.
Rows are bulk-created the way tests/characters/factories.py builds one trained character.

For each page, through Django's test Client in-process (the pages logged in with a session,
the API with an API token): the SQL statements of one request, and the median time of N
requests after 2 warm-up requests. The query count must be the same for 500 rows as for 1.

    make bench            # or: .venv/bin/python bench/bench_pages.py --db both --requests 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    QueryLog,
    add_db_arguments,
    bench_environment,
    db_label,
    machine_note,
    median,
    passthrough_args,
    run_children,
    setup_django,
)

# (label, url): middle pages are page 11 of 21 (24 cards a page) and page 13 of 25 (API, 20).
PAGES = [
    ("My Characters, page 1", "/characters/"),
    ("My Characters, page 11", "/characters/?page=11"),
    ("Scene gallery (newest 60)", "/scenes/"),
    ("API character list, page 1", "/api/character/list"),
    ("API character list, page 13", "/api/character/list?page=13"),
    ("API scene list (limit 50)", "/api/scene/list"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_arguments(parser)
    parser.add_argument("--characters", type=int, default=500)
    parser.add_argument("--scenes", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    args = parser.parse_args()
    if args.child_db is None:
        sys.exit(run_children(__file__, args.db, passthrough_args(sys.argv[1:])))
    with bench_environment(args.child_db, "pages", settings_module="bench.settings"):
        run(args)


def run(args: argparse.Namespace) -> None:
    setup_django()
    from django.test import Client

    from webtoon.accounts.services import create_api_token

    print(f"machine: {machine_note()}; database: {db_label()}")
    started = time.monotonic()
    many = seed_user("many", args.characters, args.scenes)
    one = seed_user("one", 1, 1)
    print(
        f"setup: {args.characters} characters + {args.scenes} scenes, and 1 + 1 "
        f"({time.monotonic() - started:.1f}s)"
    )
    results = {}
    for label, user in (("many", many), ("one", one)):
        page_client = Client()
        page_client.force_login(user)
        _, raw = create_api_token(user=user, name="bench")
        api_client = Client(headers={"authorization": f"Bearer {raw}"})
        for name, url in PAGES:
            client = api_client if url.startswith("/api/") else page_client
            results[(name, label)] = measure(client, url, args.requests)

    n = args.characters
    print(f"\nqueries per request and median time of {args.requests} requests")
    print(f"{'':<30}{'queries ' + str(n):>13}{'queries 1':>11}{'ms ' + str(n):>9}{'ms 1':>8}")
    constant = True
    for name, _url in PAGES:
        big, small = results[(name, "many")], results[(name, "one")]
        constant &= big["queries"] == small["queries"]
        print(
            f"{name:<30}{big['queries']:>13}{small['queries']:>11}"
            f"{big['median_ms']:>9.1f}{small['median_ms']:>8.1f}"
        )
    print(f"query count independent of the number of rows: {'yes' if constant else 'NO'}")
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for name, _url in PAGES:
            print(f"\n{name}:")
            for sql in results[(name, "many")]["statements"]:
                print("   ", sql[:150])
    summary = {f"{name} [{label}]": {k: r[k] for k in ("queries", "median_ms")}
               for (name, label), r in results.items()}  # fmt: skip
    print("JSON " + json.dumps(summary, ensure_ascii=False))
    if not constant:
        sys.exit(1)


def measure(client, url: str, requests: int) -> dict:
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    with QueryLog() as log:
        client.get(url)
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t)
    assert response.status_code == 200, (url, response.status_code)
    return {"queries": len(log), "median_ms": median(times) * 1000, "statements": log.statements}


# --- data -------------------------------------------------------------------------------------
def seed_user(username: str, n_characters: int, n_scenes: int):
    """A user with n characters and n scenes, every row as the app leaves it, in bulk."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from characters.enums import CharacterStatus, StyleId
    from characters.models import Character, CharacterVersion, Photo, Sample
    from characters.training import TRAINING
    from scenes.models import Scene, SceneCharacter
    from scenes.services import SCENE, TWO_SIZE, TWO_STEPS
    from webtoon.jobs.models import CallState, Job, JobState, RemoteCall

    user = get_user_model().objects.create_user(username)
    uid = user.pk
    now = timezone.now()
    files = Files(Path(settings.MEDIA_ROOT))
    styles = list(StyleId.values)

    photos = Photo.objects.bulk_create(
        Photo(
            owner=user,
            image=files.jpeg(f"u/{uid}/photos/p{i}.jpg"),
            width=1024,
            height=1024,
            source_format="JPEG",
            face_detected=True,
            consent_at=now,
            created_at=now - timedelta(minutes=i),
        )
        for i in range(n_characters)
    )

    def status(i: int) -> str:
        if i % 50 == 7:
            return CharacterStatus.TRAINING
        if i % 50 == 13:
            return CharacterStatus.FAILED
        return CharacterStatus.ACTIVE

    characters = Character.objects.bulk_create(
        Character(
            owner=user,
            photo=photos[i],
            name=f"캐릭터 {i:03d}",
            trigger_word=f"sks_{username}{i:04d}",
            style_id=styles[i % len(styles)],
            custom_prompt="watercolor" if styles[i % len(styles)] == "custom" else "",
            status=status(i),
            training_images_count=20,
            candidate_images_count=24,
            training_data=files.blob(f"u/{uid}/training/t{i}.zip"),
            training_data_size=2_000_000,
            lora_url=f"https://v3.fal.media/files/bench/{username}{i}.safetensors"
            if status(i) == CharacterStatus.ACTIVE
            else "",
            lora_file=files.blob(f"u/{uid}/loras/l{i}.safetensors")
            if status(i) == CharacterStatus.ACTIVE
            else "",
            lora_file_backed_up=status(i) == CharacterStatus.ACTIVE,
            failure_message="학습에 실패했습니다. 다른 이미지로 다시 시도해주세요."
            if status(i) == CharacterStatus.FAILED
            else "",
            created_at=now - timedelta(minutes=i),
            training_started_at=now - timedelta(minutes=i, seconds=1200),
            trained_at=now - timedelta(minutes=i) if status(i) == CharacterStatus.ACTIVE else None,
        )
        for i in range(n_characters)
    )
    job_state = {
        CharacterStatus.ACTIVE: JobState.SUCCEEDED,
        CharacterStatus.TRAINING: JobState.RUNNING,
        CharacterStatus.FAILED: JobState.FAILED,
    }
    jobs = Job.objects.bulk_create(
        Job(
            owner=user,
            kind=TRAINING.name,
            state=job_state[c.status],
            subject={"character": c.pk},
            progress=1.0 if c.status != CharacterStatus.TRAINING else 0.42,
            cost_estimated=TRAINING.unit_cost,
            cost_recorded=TRAINING.unit_cost if c.status == CharacterStatus.ACTIVE else 0,
            error_code="failed" if c.status == CharacterStatus.FAILED else "",
            created_at=c.training_started_at,
            started_at=c.training_started_at,
            finished_at=c.trained_at,
        )
        for c in characters
    )
    RemoteCall.objects.bulk_create(
        RemoteCall(
            job=job,
            endpoint=settings.FAL_ENDPOINTS["trainer"],
            arguments={"steps": 1500},
            output_kind="lora",
            backend="fal",
            state={
                JobState.SUCCEEDED: CallState.SUCCEEDED,
                JobState.RUNNING: CallState.RUNNING,
                JobState.FAILED: CallState.FAILED,
            }[job.state],
            request_id=f"{username}-train-{i}",
            attempts=1,
            progress=job.progress,
            current_step=1500 if job.state == JobState.SUCCEEDED else 630,
            total_steps=1500,
            output_file=c.lora_file.name,
            output_url=c.lora_url,
        )
        for i, (c, job) in enumerate(zip(characters, jobs, strict=True))
    )
    versions = CharacterVersion.objects.bulk_create(
        CharacterVersion(
            character=c,
            number=1,
            lora_url=c.lora_url,
            lora_file=c.lora_file.name,
            lora_file_backed_up=True,
            training_data=c.training_data.name,
            training_images_count=20,
            training_job=job,
            trained_at=c.trained_at,
        )
        for c, job in zip(characters, jobs, strict=True)
        if c.status == CharacterStatus.ACTIVE
    )
    by_character = {v.character_id: v for v in versions}
    for c, job in zip(characters, jobs, strict=True):
        c.training_job = job
        c.current_version = by_character.get(c.pk)
    Character.objects.bulk_update(characters, ["training_job", "current_version"])
    Sample.objects.bulk_create(
        Sample(
            character_id=v.character_id,
            version=v,
            number=n,
            prompt=f"test image {n}",
            image=files.jpeg(f"u/{uid}/samples/s{v.character_id}-{n}.jpg"),
            similarity=0.31,
        )
        for v in versions
        for n in (1, 2, 3)
    )

    active = [c for c in characters if c.status == CharacterStatus.ACTIVE]
    scene_jobs = Job.objects.bulk_create(
        Job(
            owner=user,
            kind=SCENE.name,
            state=JobState.SUCCEEDED,
            progress=1.0,
            cost_estimated=SCENE.unit_cost,
            cost_recorded=SCENE.unit_cost,
            created_at=now - timedelta(minutes=i),
            started_at=now - timedelta(minutes=i),
            finished_at=now - timedelta(minutes=i),
        )
        for i in range(n_scenes)
    )
    calls = RemoteCall.objects.bulk_create(
        RemoteCall(
            job=job,
            endpoint=settings.FAL_ENDPOINTS["lora"],
            arguments={"prompt": "scene"},
            backend="fal",
            state=CallState.SUCCEEDED,
            request_id=f"{username}-scene-{i}",
            attempts=1,
            progress=1.0,
            output_file=f"u/{uid}/jobs/{job.public_id}/scene.jpg",
        )
        for i, job in enumerate(scene_jobs)
    )

    def mode(i: int) -> str:
        if not active or i % 10 == 5:
            return Scene.Mode.PROMPT
        return Scene.Mode.TWO if i % 10 in (2, 4, 8) and len(active) > 1 else Scene.Mode.ONE

    scenes = Scene.objects.bulk_create(
        Scene(
            owner=user,
            mode=mode(i),
            inputs={"location": "사무실", "situation": "세금 신고를 설명"},
            prompt=f"scene {i}, office, explaining a tax filing",
            image_size=TWO_SIZE if mode(i) == Scene.Mode.TWO else "portrait_4_3",
            steps=TWO_STEPS if mode(i) == Scene.Mode.TWO else 28,
            seed=1000 + i,
            image=files.jpeg(call.output_file.name),
            job=job,
            call=call,
            created_at=now - timedelta(minutes=i),
        )
        for i, (job, call) in enumerate(zip(scene_jobs, calls, strict=True))
    )
    cast = []
    for i, scene in enumerate(scenes):
        roles = {Scene.Mode.PROMPT: "", Scene.Mode.ONE: "A", Scene.Mode.TWO: "AB"}[scene.mode]
        for k, role in enumerate(roles):
            character = active[(i + k) % len(active)]
            cast.append(
                SceneCharacter(
                    scene=scene,
                    character=character,
                    version=by_character[character.pk],
                    role=role,
                    trigger_word=character.trigger_word,
                    lora_url=character.lora_url,
                    scale=0.8 if role == "A" else 0.7,
                )
            )
    SceneCharacter.objects.bulk_create(cast)
    return user


class Files:
    """Writes the files rows name (small stand-ins: the pages read names, not bytes)."""

    def __init__(self, media: Path) -> None:
        import io

        from PIL import Image

        self.media = media
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 180, 160)).save(buf, "JPEG")
        self._jpeg = buf.getvalue()

    def _write(self, name: str, data: bytes) -> str:
        path = self.media / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return name

    def jpeg(self, name: str) -> str:
        return self._write(name, self._jpeg)

    def blob(self, name: str) -> str:
        return self._write(name, b"\0" * 64)


if __name__ == "__main__":
    main()
