"""The 작업 page's names for jobs (issue 15): which character, what kind, when, and a link to
where the work shows. Subjects are looked up in one query per kind of subject."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from webtoon.jobs.presenters import job_dict

# Kind labels a user reads (the registry's are partly jargon: "LoRA 학습").
KIND_WORDS = {
    "cuts": "학습 이미지 생성",
    "training": "캐릭터 학습",
    "samples": "학습 후 테스트 이미지 3장",
    "test_image": "테스트 생성",
    "scene": "씬 생성",
    "sweep": "캐릭터 반영 강도 비교",
    "image": "빠른 이미지 생성",
}


def _subjects(jobs) -> dict[str, dict[int, object]]:
    from characters.models import Character, CreationSession  # lazy: domain apps import jobs
    from scenes.models import Scene

    ids: dict[str, set[int]] = {"character": set(), "session": set(), "scene": set()}
    for job in jobs:
        for key in ids:
            if isinstance((job.subject or {}).get(key), int):
                ids[key].add(job.subject[key])
    sessions = CreationSession.objects.in_bulk(ids["session"])
    made = Character.objects.filter(session__in=ids["session"]).exclude(status="deleted")
    by_session = {c.session_id: c for c in made}
    return {
        "character": Character.objects.exclude(status="deleted").in_bulk(ids["character"]),
        "session": {pk: (s, by_session.get(pk)) for pk, s in sessions.items()},
        "scene": Scene.objects.prefetch_related("cast__character").in_bulk(ids["scene"]),
    }


def _about(job, subjects) -> tuple[str, str]:
    """(what the job was about, link to it) in the user's words."""
    subject = job.subject or {}
    if (character := subjects["character"].get(subject.get("character"))) is not None:
        return character.name, character.get_absolute_url()
    if (pair := subjects["session"].get(subject.get("session"))) is not None:
        session, character = pair
        name = character.name if character else _("새 캐릭터 (%(style)s)") % {
            "style": session.get_style_id_display()
        }
        return name, reverse("characters:session", args=[session.public_id])
    if (scene := subjects["scene"].get(subject.get("scene"))) is not None:
        names = [c.character.name for c in scene.cast.all() if c.character]
        title = " · ".join(names) or _("캐릭터 없는 씬")
        return title, reverse("scenes:index") + f"#scene-{scene.public_id}"
    if job.kind == "image":
        return _("캐릭터 없이"), ""
    return _("삭제된 항목"), ""


def job_rows(jobs) -> list[dict]:
    jobs = list(jobs)
    subjects = _subjects(jobs)
    rows = []
    for job in jobs:
        row = job_dict(job)
        row["about"], row["link"] = _about(job, subjects)
        row["kind_words"] = _(KIND_WORDS.get(job.kind, row["kind_label"]))
        rows.append(row)
    return rows
