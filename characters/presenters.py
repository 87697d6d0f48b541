"""The shapes the curation pages render (no logic the API or the worker needs)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from webtoon.media import media_url

from . import curation, generation, identity, management, training
from .enums import CutCategory
from .models import CreationSession
from .prompts import REALISTIC_FACE_STYLES, STYLE_PROMPTS

STYLE_ICONS = {
    "original": "📷",
    "realistic_sketch": "🎨",
    "chibi_2head": "🧸",
    "kakao_emoticon": "💬",
    "simple_lineart": "✏️",
    "custom": "🔧",
}
STYLE_HINTS = {
    "original": _("사진은 사진대로, 그림은 그림대로. 표정과 포즈만 바꿉니다 (FLUX Kontext)."),
    "realistic_sketch": _("실사 얼굴에 손그림 몸체, 카톡 이모티콘 느낌"),
    "chibi_2head": _("큰 머리, 작은 몸의 귀여운 2등신"),
    "kakao_emoticon": _("둥근 선, 밝은 파스텔 색"),
    "simple_lineart": _("흑백의 깔끔한 선화"),
    "custom": _("원하는 스타일을 직접 설명합니다 (최대 200자)"),
}


def style_options(form) -> list[dict]:
    chosen = form["style_id"].value() or "original"
    return [
        {
            "id": value,
            "label": label,
            "icon": STYLE_ICONS[value],
            "hint": STYLE_HINTS[value],
            "keywords": STYLE_PROMPTS.get(value, ""),
            "checked": value == chosen,
        }
        for value, label in form.fields["style_id"].choices
    ]


def cut_cells(session: CreationSession) -> list[dict]:
    judged = session.style_id in REALISTIC_FACE_STYLES
    cells = []
    for cut in session.cuts.select_related("call").order_by("number"):
        state = generation.cut_state(cut)
        checking = state == "completed" and cut.quality_ok is None
        cells.append(
            {
                "number": cut.number,
                "label": cut.label_ko,
                "category": CutCategory(cut.category).label,
                "state": state,
                "url": media_url(cut.image.name) if cut.image else None,
                "selected": cut.selected and bool(cut.image),
                "error": cut.error,
                "checking": checking,
                "quality_ok": cut.quality_ok,
                "reasons": cut.quality_reasons,
                "distance": cut.similarity,
                "judged": judged,
                "busy": state in ("pending", "generating"),
                "token": f"{cut.number}.{state}.{cut.quality_ok}",
            }
        )
    return cells


def curation_context(session: CreationSession) -> dict:
    cells = cut_cells(session)
    summary = curation.summarize(session)
    done = sum(c["state"] == "completed" for c in cells)
    return {
        "session": session,
        "cells": cells,
        "summary": summary,
        "done": done,
        "active": any(c["busy"] or c["checking"] for c in cells),
        "generating": any(c["busy"] for c in cells),
        "tokens": ",".join(c["token"] for c in cells),
        "additional_count": settings.GENERATION_ADDITIONAL_COUNT,
        "additional_cost": curation.additional_cost(settings.GENERATION_ADDITIONAL_COUNT),
        "min_selected": settings.MIN_SELECTED_CUTS,
        "deadline_message": generation.deadline_message(session),
    }


def _duration_ko(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return (
        _("%(m)d분 %(s)d초") % {"m": minutes, "s": secs} if minutes else _("%(s)d초") % {"s": secs}
    )


def character_context(character) -> dict:
    job = character.training_job
    status = None
    if job is not None:
        status = training.status_of(character, job, job.calls.order_by("-pk").first())
        generation_jobs = generation.session_jobs(character.session) if character.session else []
        spent = sum((j.cost_recorded for j in generation_jobs), 0)
        spent += job.cost_recorded
        if character.samples_job:
            spent += character.samples_job.cost_recorded
    else:
        spent = 0
    samples = [
        {
            "number": s.number,
            "prompt": s.prompt,
            "url": media_url(s.image.name) if s.image else None,
            "distance": s.similarity,
            "same": s.similarity is not None and s.similarity <= identity.SAME_PERSON_MAX_DISTANCE,
        }
        for s in sorted(training.current_samples(character), key=lambda s: s.number)
    ]
    samples_running = bool(character.samples_job and not character.samples_job.is_terminal)
    retraining = character.status == "active" and bool(job and not job.is_terminal)
    gallery = [management.gallery_dict(g) for g in character.gallery.all()[:24]]
    return {
        "character": character,
        "status": status,
        "samples": samples,
        "samples_running": samples_running,
        "consistency": training.consistency(character),
        "training_time": _duration_ko(character.training_seconds),
        "total_cost": spent,
        "cost": training.cost_breakdown(character),
        "backup_failed": character.status == "active" and not character.lora_file_backed_up,
        "backup_failed_message": _(training.BACKUP_FAILED),
        "poor_result_hint": _(training.POOR_RESULT_HINT),
        "polling": character.status in ("queued", "training")
        or samples_running
        or retraining
        or any(g["url"] is None and not g["error"] for g in gallery),
        "retraining": retraining,
        "gallery": gallery,
        "versions": list(character.versions.order_by("-number")),
        "scale_min": settings.LORA_SCALE_MIN,
        "scale_max": settings.LORA_SCALE_MAX,
        "krw_per_usd": settings.KRW_PER_USD,
    }


def card_context(character) -> dict:
    """What a My Characters card shows (SPEC §5.1), from prefetched rows only."""
    job = character.training_job
    in_flight = job is not None and not job.is_terminal
    status = training.status_of(character, job, None) if in_flight else None
    samples = [s for s in training.current_samples(character) if s.image]
    return {
        "character": character,
        "in_flight": in_flight,
        "status": status,
        "samples": [media_url(s.image.name) for s in samples][:3],
        "images_used": _("%(used)d/%(total)d장")
        % {
            "used": character.training_images_count,
            "total": character.candidate_images_count or character.training_images_count,
        },
        "version": character.current_version.number if character.current_version else None,
        "failure": _(character.failure_message) if character.failure_message else "",
        "retry_possible": job is not None and job.state == "failed",
    }


def retrain_cuts(character) -> list[dict]:
    """The creation session's cuts; those the first training used are marked as such."""
    if character.session is None:
        return []
    cuts = character.session.cuts.exclude(image="").order_by("number")
    return [
        {
            "number": c.number,
            "label": c.label_ko,
            "url": media_url(c.image.name),
            "used": c.selected,
        }
        for c in cuts
    ]
