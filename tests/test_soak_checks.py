"""The soak's invariant checks (soak/checks.py) catch what they claim to: each is shown a
clean state and the fault it exists for."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from soak import checks
from soak.flow import FlowResult
from webtoon.jobs import services
from webtoon.jobs.models import CallAttempt, CallState, JobState, RemoteCall
from webtoon.jobs.services import CallSpec

pytestmark = pytest.mark.django_db


def _job(user, n=1, kind="image"):
    return services.create_job(
        owner=user,
        kind=kind,
        calls=[CallSpec("e", {"i": i}, slot=i) for i in range(n)],
        start=False,
    )


def _submitted(call, *rids):
    for number, rid in enumerate(rids, 1):
        CallAttempt.objects.create(call=call, number=number, request_id=rid)
    RemoteCall.objects.filter(pk=call.pk).update(request_id=rids[-1])


def sub(rid, *, delivered=True, error=None, cancelled=False):
    return {"request_id": rid, "delivered": delivered, "error": error, "cancelled": cancelled}


def test_flows_must_end_with_an_outcome_and_failures_with_a_cause():
    ok, _ = checks.flows_settled([FlowResult("a", "finished"), FlowResult("b", "failed", "x")])
    assert ok
    ok, lines = checks.flows_settled([FlowResult("c", "failed", " ", steps=["train"])])
    assert not ok and "without a cause" in "\n".join(lines)


def test_double_submission_is_caught_and_a_retry_after_a_fal_error_is_not(user):
    call = _job(user).calls.get()
    _submitted(call, "r1", "r2")
    ok, _ = checks.no_double_submission([sub("r1", delivered=False, error="boom"), sub("r2")])
    assert ok
    ok, lines = checks.no_double_submission([sub("r1", delivered=False), sub("r2")])
    assert not ok and "could still run" in "\n".join(lines)
    ok, lines = checks.no_double_submission([sub("r1"), sub("r2")])
    assert not ok and "delivered 2" in "\n".join(lines)


def test_a_request_we_never_recorded_must_be_a_call_failed_as_submit_unknown(user):
    call = _job(user).calls.get()
    ok, _ = checks.no_double_submission([sub("lost")])
    assert not ok
    CallAttempt.objects.create(call=call, number=1, outcome="submit_unknown")
    RemoteCall.objects.filter(pk=call.pk).update(
        state=CallState.FAILED, error_code="submit_unknown"
    )
    ok, _ = checks.no_double_submission([sub("lost")])
    assert ok


def test_unfinished_jobs_are_stuck(user):
    job = _job(user)
    ok, lines = checks.nothing_stuck()
    assert not ok and "unfinished jobs: 1" in "\n".join(lines)
    job.calls.update(state=CallState.SUCCEEDED)
    job.state = JobState.SUCCEEDED
    job.save()
    assert checks.nothing_stuck()[0]


def test_an_unreferenced_file_and_a_missing_file_are_both_caught(user, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/media/"},
        },
    }
    settings.MEDIA_ROOT = tmp_path
    settings.LOCAL_BACKUP_PATH = tmp_path / "app-data"  # other tests leave backup folders
    call = _job(user).calls.get()
    ok, lines = checks.files_consistent()
    assert ok, lines
    call.output_file.save(f"u/{user.pk}/jobs/x/1-1.jpg", ContentFile(b"jpeg"))
    assert checks.files_consistent()[0]
    stray = Path(settings.MEDIA_ROOT, f"u/{user.pk}/jobs/x/orphan.jpg")
    stray.write_bytes(b"left behind")
    ok, lines = checks.files_consistent()
    assert not ok and "orphan.jpg" in "\n".join(lines)
    stray.unlink()
    Path(settings.MEDIA_ROOT, call.output_file.name).unlink()
    ok, lines = checks.files_consistent()
    assert not ok and "rows whose file is missing: 1" in "\n".join(lines)


def test_three_overlapping_trainings_of_one_user_break_the_limit(user, other_user):
    now = timezone.now()
    job = _job(user, n=3, kind="training")
    for i, call in enumerate(job.calls.order_by("slot")):
        CallAttempt.objects.create(
            call=call,
            number=1,
            started_at=now + timedelta(minutes=i),
            finished_at=now + timedelta(minutes=10 if i < 2 else 12),
        )
    ok, lines = checks.training_limit_held(2)
    assert not ok and "3 at once" in "\n".join(lines)
    CallAttempt.objects.filter(call__slot=2).update(
        started_at=now + timedelta(minutes=11), finished_at=now + timedelta(minutes=20)
    )
    assert checks.training_limit_held(2)[0]
