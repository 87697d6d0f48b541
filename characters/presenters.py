"""The shapes the curation pages render (no logic the API or the worker needs)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.jobs.progress import estimate_from_elapsed
from webtoon.media import media_url
from webtoon.prompting.translate import source_of
from webtoon.ui.money import call_price, price_text
from webtoon.ui.sizes import size_choices, size_label

from . import (
    curation,
    generation,
    identity,
    likeness,
    management,
    reference_sheet,
    references,
    sweep,
    training,
)
from .enums import CutCategory
from .models import CreationSession
from .prompts import REALISTIC_FACE_STYLES

STYLE_ICONS = {
    "original": "📷",
    "realistic_sketch": "🎨",
    "chibi_2head": "🧸",
    "kakao_emoticon": "💬",
    "simple_lineart": "✏️",
    "custom": "🔧",
}
STYLE_HINTS = {
    "original": _("올린 사진의 느낌 그대로, 표정과 포즈만 바꿉니다."),
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
            "example": static(f"img/styles/{value}.svg"),
            # Each style's cuts go to a different endpoint, at a different price (issue 15).
            "price": price_text(generation.estimated_generation_cost(None, value)),
            "checked": value == chosen,
        }
        for value, label in form.fields["style_id"].choices
    ]


def cut_cells(session: CreationSession, rows: list[dict] | None = None) -> list[dict]:
    judged = session.style_id in REALISTIC_FACE_STYLES
    labels = dict(CutCategory.choices)
    cells = []
    for cut in generation.cut_rows(session) if rows is None else rows:
        state = generation.row_state(cut)
        checking = state == "completed" and cut["quality_ok"] is None
        shown = (
            None
            if cut["quality_ok"] is None
            else likeness.display(cut["identity"], drawn=not judged)
        )
        cells.append(
            {
                "number": cut["number"],
                "label": cut["label_ko"],
                "category": labels.get(cut["category"], cut["category"]),
                "state": state,
                "url": media_url(cut["image"]) if cut["image"] else None,
                "selected": cut["selected"] and bool(cut["image"]),
                "error": cut["error"],
                "checking": checking,
                "quality_ok": cut["quality_ok"],
                "reasons": cut["quality_reasons"],
                "distance": cut["similarity"],
                "identity": cut["identity"],
                "identity_words": shown["words"] if shown else "",
                "identity_tone": shown["tone"] if shown else "",
                "judged": judged,
                "busy": state in ("pending", "generating"),
                "token": f"{cut['number']}.{state}.{cut['quality_ok']}",
            }
        )
    return cells


def _summary_of(rows: list[dict]) -> curation.Summary:
    """curation.summarize from the rows already read."""
    selected = Counter(r["category"] for r in rows if r["selected"] and r["image"])
    coverage = [
        curation.CoverageRow(cat, label, selected[cat], rec)
        for cat, label, rec in curation.COVERAGE_GROUPS
    ]
    return curation.Summary(
        total=len(rows), selected_count=sum(selected.values()), coverage=coverage
    )


def _running_checks(rows: list[dict]) -> list:
    """curation.checks_running from the rows already read (same rule: an image, no verdict
    yet, its call finished within CHECK_BLOCKS_SECONDS): when each such call finished."""
    since = timezone.now() - timedelta(seconds=curation.CHECK_BLOCKS_SECONDS)
    return [
        r["call__finished_at"]
        for r in rows
        if r["image"]
        and r["quality_ok"] is None
        and r["call_id"] is not None
        and r["call__finished_at"] is not None
        and r["call__finished_at"] >= since
    ]


def curation_context(session: CreationSession, jobs_of_session: list | None = None) -> dict:
    """The curation grid: one read of the cuts (with their calls) and one of the session's
    jobs, unless the caller (the poll, which asked for their refresh) passes them."""
    if jobs_of_session is None:
        jobs_of_session = generation.session_jobs(session)
    rows = generation.cut_rows(session)  # one read: cells, summary, checks, waiting
    running_checks = _running_checks(rows)
    cells = cut_cells(session, rows)
    summary = _summary_of(rows)
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
        "additional_cost": curation.additional_cost(
            settings.GENERATION_ADDITIONAL_COUNT, session.style_id
        ),
        "min_selected": settings.MIN_SELECTED_CUTS,
        "deadline_message": generation.deadline_message(session, jobs_of_session),
        "wait_message": generation.rows_wait_message(jobs_of_session, rows),
        "checks_running": len(running_checks),
        # When the first of them stops counting: the grid changes then with no row changed.
        "checks_settle_at": first + timedelta(seconds=curation.CHECK_BLOCKS_SECONDS)
        if (first := min(running_checks, default=None))
        else None,
        # issue 16: near-copies of the photo teach the LoRA a single pose
        "near_copies": sum(
            1 for c in cells if c["selected"] and (c["identity"] or {}).get("near_copy")
        ),
        "regenerate_price": price_text(curation.additional_cost(1, session.style_id)),
    }


def duration_ko(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return (
        _("%(m)d분 %(s)d초") % {"m": minutes, "s": secs} if minutes else _("%(s)d초") % {"s": secs}
    )


def spent_on(character) -> Decimal:
    """What making the character cost: its cuts, training, test images and sweep (the jobs'
    ledger), or for a restored character the cost its backup recorded."""
    job = character.training_job
    if job is None:
        return character.restored_cost or Decimal("0")
    generation_jobs = generation.session_jobs(character.session) if character.session else []
    spent = sum((j.cost_recorded for j in generation_jobs), Decimal("0"))
    spent += job.cost_recorded
    if character.samples_job:
        spent += character.samples_job.cost_recorded
    version = character.current_version
    if version and version.sweep_job:  # the scale sweep is part of the training's cost
        spent += version.sweep_job.cost_recorded
    return spent


def character_context(character) -> dict:
    job = character.training_job
    status = None
    if job is not None:
        status = training.status_of(character, job, job.calls.order_by("-pk").first())
    spent = spent_on(character)
    drawn = likeness.is_drawn(character.style_id)
    no_anchor = likeness.anchor_missing(character)
    samples = [
        {
            "number": s.number,
            "prompt": s.prompt,
            "url": media_url(s.image.name) if s.image else None,
            "distance": s.similarity,
            "same": s.similarity is not None and s.similarity <= identity.SAME_PERSON_MAX_DISTANCE,
            "identity": s.identity,
            "identity_words": likeness.words(s.identity, drawn=drawn, no_anchor=no_anchor)
            if s.image
            else "",
        }
        for s in sorted(training.current_samples(character), key=lambda s: s.number)
    ]
    samples_running = bool(character.samples_job and not character.samples_job.is_terminal)
    retraining = character.status == "active" and bool(job and not job.is_terminal)
    gallery = gallery_items(character.gallery.all()[:24])
    scale_sweep = sweep.sweep_of(character)
    if character.status == "active" and not character.reference_sheet:
        reference_sheet.request_build_once(character)  # made before issue 16: drawn now
    return {
        "character": character,
        "status": status,
        "samples": samples,
        "samples_running": samples_running,
        "sweep": scale_sweep,
        "reference_sheet_url": media_url(character.reference_sheet.name)
        if character.reference_sheet
        else None,
        "consistency": training.consistency(character),
        # Issue 17: the character's LoRA scenes vs its reference scenes, on identity.
        "method_comparison": references.method_comparison(character)
        if character.status == "active"
        else None,
        "training_time": duration_ko(character.training_seconds),
        "total_cost": spent,
        "cost": training.cost_breakdown(character),
        "backup_failed": character.status == "active" and not character.lora_file_backed_up,
        "backup_failed_message": _(training.BACKUP_FAILED),
        "poor_result_hint": _(training.POOR_RESULT_HINT),
        "polling": character.status in ("queued", "training")
        or samples_running
        or scale_sweep["running"]
        or retraining
        or any(g["url"] is None and not g["error"] for g in gallery),
        "retraining": retraining,
        "gallery": gallery,
        "versions": list(character.versions.order_by("-number")),
        "scale_min": settings.LORA_SCALE_MIN,
        "scale_max": settings.LORA_SCALE_MAX,
        "krw_per_usd": settings.KRW_PER_USD,
        "remaining_text": remaining_text(status["estimated_remaining_seconds"]) if status else "",
        "test_sizes": size_choices(management.IMAGE_SIZES),
        # Priced for the size first in the list (square_hd), like the job's own estimate.
        "test_price": price_text(
            call_price("lora", {"image_size": "square_hd"}, "COST_PER_LORA_INFERENCE")
        ),
    }


def remaining_text(seconds: int | None) -> str:
    """Minutes, not seconds (issue 15): "약 18분", "1분 이내"."""
    if seconds is None:
        return ""
    if seconds < 60:
        return _("1분 이내")
    return _("약 %(m)d분") % {"m": math.ceil(seconds / 60)}


def gallery_items(images) -> list[dict]:
    """Test images as the page shows them: the words the user typed (Korean in, Korean
    out), the size in Korean; the English prompt stays behind "프롬프트 보기"."""
    rows = []
    for image in images:
        row = management.gallery_dict(image)
        row["prompt_ko"] = _typed_words(row["prompt"], image)
        row["size_label"] = size_label(row["image_size"])
        rows.append(row)
    return rows


def _typed_words(prompt: str, image) -> str:
    trigger = image.character.trigger_word
    rest = prompt[len(trigger) :].lstrip(", ") if prompt.startswith(trigger) else prompt
    return source_of(rest) or rest or _("(기본 모습)")


def card_context(character, samples: list | None = None) -> dict:
    """What a My Characters card shows (SPEC §5.1), from prefetched rows only (or the
    character's samples read by the caller)."""
    job = character.training_job
    in_flight = job is not None and not job.is_terminal
    status = training.status_of(character, job, None) if in_flight else None
    percent, remaining = _card_progress(job, status) if status else (0, "")
    samples = [s for s in training.current_samples(character, samples) if s.image]
    return {
        "character": character,
        "in_flight": in_flight,
        "status": status,
        "percent": percent,
        "remaining": remaining,
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


def _card_progress(job, status: dict) -> tuple[int, str]:
    """A card reads no call rows (one query for the whole list): while the training runs, its
    progress is the job's, or the elapsed-time estimate the character page shows too."""
    percent = max(status["progress_percent"], round(job.progress * 100))
    if job.state != "running" or job.started_at is None:
        return percent, remaining_text(status["estimated_remaining_seconds"])
    ran = (timezone.now() - job.started_at).total_seconds()
    expected = training.EXPECTED_TRAINING_SECONDS
    percent = max(percent, int(estimate_from_elapsed(ran, expected) * 100))
    return percent, remaining_text(int(max(60, expected - ran)))


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
