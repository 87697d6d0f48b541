"""The one shape of a job that the API and the pages show."""

from __future__ import annotations

from django.utils.translation import gettext as _

from webtoon.media import media_url

from . import account
from .kinds import REGISTRY
from .models import CallState, Job

ERROR_MESSAGES = {
    "deadline": _("생성이 지연되고 있습니다. 잠시 후 다시 시도해주세요."),
    "submit_unknown": _("요청 결과를 확인할 수 없어 중단했습니다. 고객 지원이 확인합니다."),
    "remote_rejected": _("요청이 거절되었습니다."),
    "remote_unavailable": _("이미지 서비스에 일시적인 문제가 있습니다."),
    "download_refused": _("결과 파일을 안전하게 받을 수 없습니다."),
    "file_gone": _("결과 파일이 만료되었습니다."),
    "lora_expired": _("LoRA 파일이 만료되었습니다. 백업에서 복원해주세요."),
    "content_policy": _(
        "이미지 서비스의 안전 정책에 걸려 만들 수 없었습니다. 표현을 바꿔 다시 시도해주세요."
    ),
    "input_invalid": _("이미지 서비스가 요청 내용을 받아들이지 않았습니다."),
}


def wait_message(job: Job, calls=None) -> str:
    """Why an unfinished job is waiting, in the user's words: the fal account is refused
    (nothing about their input), or their work waits in line ("대기 중 (앞에 N건)")."""
    if job.is_terminal:
        return ""
    if account.paused() is not None:
        return str(account.PAUSED_MESSAGE)
    calls = list(job.calls.all()) if calls is None else calls
    positions = [
        c.queue_position
        for c in calls
        if c.queue_position is not None
        and c.state in (CallState.PENDING, CallState.SUBMITTED)
    ]
    if not positions or any(c.state == CallState.RUNNING for c in calls):
        return ""
    return _("대기 중 (앞에 %(n)d건)") % {"n": min(positions)}


def _state_label(job: Job, waiting: str) -> str:
    """A job that waits (the account paused, or in line) does not say "진행 중" beside
    the notice that says why it waits."""
    if not waiting:
        return job.get_state_display()
    return str(_("일시 정지") if waiting == str(account.PAUSED_MESSAGE) else _("대기 중"))


def job_dict(job: Job) -> dict:
    calls = list(job.calls.all())
    kind = REGISTRY.get(job.kind)
    waiting = wait_message(job, calls)
    return {
        "id": str(job.public_id),
        "kind": job.kind,
        "kind_label": kind.label if kind else job.kind,
        "state": job.state,
        "state_label": _state_label(job, waiting),
        "progress_percent": round(job.progress * 100),
        "cost_estimated": float(job.cost_estimated),
        "cost_recorded": float(job.cost_recorded),
        "wait_message": waiting,
        "error_code": job.error_code,
        "error_message": ERROR_MESSAGES.get(job.error_code, job.error_message)
        if job.error_code
        else job.error_message,
        "refunded": job.refunded_at is not None,
        "refund_message": _("환불 처리되었습니다") if job.refunded_at else "",
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "outputs": [
            {
                "slot": c.slot,
                "state": c.state,
                "url": media_url(c.output_file.name) if c.output_file else None,
                "queue_position": c.queue_position,
                "error": c.error_message if c.state == "failed" else "",
            }
            for c in calls
        ],
    }
