"""The job engine: submit, poll, retry with backoff, deadlines, worker death and resume."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from webtoon.jobs import services
from webtoon.jobs.kinds import JobKind, register
from webtoon.jobs.models import CallAttempt, CallState, Job, JobState, RemoteCall
from webtoon.jobs.services import CallSpec
from webtoon.testing.fal_fake import Chaos

pytestmark = pytest.mark.django_db

LORA = "fal-ai/flux-lora"

register(
    JobKind(
        name="test_batch",
        label="batch",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_IMAGE_GENERATION",
        expected_seconds=10,
        partial_ok=True,
    )
)
register(
    JobKind(
        name="test_training",
        label="training",
        deadline_setting="TRAINING_TIMEOUT_SECONDS",
        max_attempts_setting="TRAINING_MAX_RETRIES",
        cost_setting="COST_PER_LORA_TRAINING",
        expected_seconds=1200,
        long_running=True,
    )
)


def make_job(user, n=1, kind="image", endpoint=LORA, output_kind="image"):
    calls = [
        CallSpec(endpoint, {"prompt": f"cut {i}"}, slot=i, output_kind=output_kind)
        for i in range(n)
    ]
    return services.create_job(owner=user, kind=kind, calls=calls, start=False)


def run_to_end(job, passes=200):
    for _ in range(passes):
        job = services.advance_job(job.pk)
        if job.is_terminal:
            return job
    raise AssertionError(f"job still {job.state}")


def test_job_on_fal_succeeds_and_stores_the_image_in_our_storage(user, fal):
    job = make_job(user)
    job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED
    call = job.calls.get()
    assert call.request_id == fal.submissions[0].request_id
    assert call.output_file.name.startswith(f"u/{user.pk}/jobs/")
    assert call.output_file.read()[:2] == b"\xff\xd8"  # a JPEG, from our storage
    assert float(job.cost_recorded) == pytest.approx(0.035)  # flux-lora: $0.035 per 1024² MP
    assert len(fal.submissions) == 1


def test_request_id_is_saved_before_any_status_is_read(user, fal):
    job = make_job(user)
    services.advance_job(job.pk)  # first pass: submit + first status
    call = RemoteCall.objects.get(job=job)
    assert call.request_id and call.submitted_at
    assert call.state in (CallState.SUBMITTED, CallState.RUNNING)


def test_all_calls_are_submitted_in_one_pass(user, fal):
    job = make_job(user, n=24, kind="test_batch")
    services.advance_job(job.pk)
    assert len(fal.submissions) == 24
    assert RemoteCall.objects.filter(job=job, request_id__isnull=False).count() == 24


def test_submit_5xx_is_retried_with_backoff_then_succeeds(user, fal, settings):
    settings.JOB_BACKOFF_BASE_SECONDS = 5
    fal.fail("submit", status=500, times=1)
    job = make_job(user)
    services.advance_job(job.pk)
    call = RemoteCall.objects.get(job=job)
    assert call.state == CallState.PENDING and call.attempts == 1
    assert call.error_code == "remote_unavailable"
    wait = (call.next_attempt_at - timezone.now()).total_seconds()
    assert 3 <= wait <= 7  # 5 s base with jitter
    services.advance_job(job.pk)  # not due yet: nothing submitted
    assert len(fal.submissions) == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED
    assert RemoteCall.objects.get(job=job).attempts == 2
    assert CallAttempt.objects.filter(call__job=job).count() == 2


def test_three_failures_fail_the_call_with_its_cause(user, fal):
    fal.fail("submit", status=500, times=3)
    job = run_to_end(make_job(user))
    assert job.state == JobState.FAILED
    assert job.error_code == "remote_unavailable"
    call = job.calls.get()
    assert call.attempts == 3
    assert "500" in call.error_message
    assert float(job.cost_recorded) == 0


def test_rejected_request_is_not_retried(user, fal):
    fal.fail("submit", status=422, body={"detail": [{"msg": "prompt required"}]})
    job = run_to_end(make_job(user))
    assert job.state == JobState.FAILED
    assert job.calls.get().attempts == 1
    assert job.error_code == "input_invalid"  # a typed validation error: never resubmitted


def test_completed_with_error_is_resubmitted(user, fal):
    fal.complete_with_error(LORA, "runner crashed")
    job = make_job(user)
    for _ in range(10):
        job = services.advance_job(job.pk)
        if len(fal.submissions) == 2:
            break
    fal.completion_errors.clear()
    job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submissions) == 2
    # A crashed runner is infrastructure: retried and, by fal's FAQ (5xx), not charged.
    charges = list(CallAttempt.objects.filter(call__job=job).order_by("number"))
    assert [a.charge for a in charges] == ["none", "charged"]
    assert float(job.cost_recorded) == pytest.approx(0.035)


def test_status_timeouts_and_malformed_replies_are_survived(user, fal):
    fal.fail("status", timeout=True, times=2)
    fal.fail("status", malformed=True, times=1)
    fal.fail("result", status=503, times=1, headers={"x-fal-request-id": "r"})
    job = run_to_end(make_job(user))
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submissions) == 1  # polling trouble never resubmits paid work


def test_a_failed_cut_leaves_an_empty_slot_and_the_rest_complete(user, fal):
    fal.fail("submit", status=500, times=3, match=lambda args: args.get("prompt") == "cut 2")
    job = run_to_end(make_job(user, n=4, kind="test_batch"))
    assert job.state == JobState.SUCCEEDED
    states = dict(RemoteCall.objects.filter(job=job).values_list("slot", "state"))
    assert states[2] == CallState.FAILED
    assert [states[s] for s in (0, 1, 3)] == [CallState.SUCCEEDED] * 3
    assert job.error_message == "1개 실패"
    assert RemoteCall.objects.get(job=job, slot=2).attempts == 3


def test_deadline_fails_the_job_and_cancels_what_is_in_flight(user, fal):
    fal.queue_polls = 10_000  # never leaves the queue
    job = make_job(user, n=2, kind="test_batch")
    services.advance_job(job.pk)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        job = services.advance_job(job.pk)
    assert job.state == JobState.FAILED
    assert job.error_code == "deadline"
    assert fal.count("cancel") == 2
    assert set(job.calls.values_list("error_code", flat=True)) == {"deadline"}


def test_worker_death_after_submit_resumes_without_resubmitting(user, fal):
    fal.queue_polls = 3
    job = make_job(user, n=3, kind="test_batch")
    assert services.claim(job.pk)
    services.advance_job(job.pk)  # submits, then the worker "dies" holding the lease
    assert len(fal.submissions) == 3
    assert services.reconcile() == 0  # lease still held: nobody steals the job
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert services.reconcile() == 1  # lease expired: the job is picked up again
        job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submissions) == 3


def test_call_left_submitting_by_a_dead_worker_is_not_resubmitted(user, fal):
    job = make_job(user, n=2, kind="test_batch")
    orphan = RemoteCall.objects.get(job=job, slot=0)
    orphan.state, orphan.attempts = CallState.SUBMITTING, 1
    orphan.save()
    job = run_to_end(job)
    orphan.refresh_from_db()
    assert orphan.state == CallState.FAILED and orphan.error_code == "submit_unknown"
    assert len(fal.submissions) == 1  # only the other call was sent


def test_long_running_job_gets_one_pass_per_run_and_reports_steps(user, fal):
    fal.running_polls = 3
    job = make_job(
        user, kind="test_training", endpoint="fal-ai/flux-lora-portrait-trainer", output_kind="lora"
    )
    RemoteCall.objects.filter(job=job).update(arguments={"steps": 1500, "images_data_url": "x"})
    assert services.run_job(job.pk) == JobState.RUNNING
    assert (len(fal.submissions), fal.count("status")) == (1, 0)  # one pass: submit only
    services.run_job(job.pk)
    assert fal.count("status") == 1
    services.run_job(job.pk)
    call = RemoteCall.objects.get(job=job)
    assert call.total_steps == 1500 and call.current_step > 0
    before = Job.objects.get(pk=job.pk).progress
    for _ in range(5):
        services.run_job(job.pk)
    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.SUCCEEDED
    assert job.progress >= before
    assert job.calls.get().output_file.name.endswith(".safetensors")
    assert float(job.cost_recorded) == pytest.approx(2.0)


def test_training_is_retried_twice_then_fails(user, fal):
    fal.fail("submit", status=500, times=5)
    job = make_job(
        user, kind="test_training", endpoint="fal-ai/flux-lora-portrait-trainer", output_kind="lora"
    )
    job = run_to_end(job)
    assert job.state == JobState.FAILED
    assert job.calls.get().attempts == 3  # 1 + TRAINING_MAX_RETRIES


def test_download_from_a_foreign_host_fails_without_retry(user, fal, monkeypatch):
    original = fal._make_output

    def evil(fake):
        out = original(fake)
        out["images"][0]["url"] = "https://attacker.example.com/x.jpg"
        return out

    monkeypatch.setattr(fal, "_make_output", evil)
    job = run_to_end(make_job(user))
    assert job.state == JobState.FAILED
    assert job.error_code == "download_refused"
    assert len(fal.submissions) == 1


def test_retry_job_runs_failed_calls_again(user, fal, django_capture_on_commit_callbacks):
    fal.fail("submit", status=422)
    job = run_to_end(make_job(user))
    assert job.state == JobState.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_job(job)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


def test_progress_never_goes_backwards(user, fal):
    fal.running_polls = 4
    job = make_job(user, n=2, kind="test_batch")
    seen = []
    for _ in range(40):
        job = services.advance_job(job.pk)
        seen.append(job.progress)
        if job.is_terminal:
            break
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


def test_offline_job_runs_end_to_end_through_the_queue(
    user, offline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.create_image_job(user, "a tax accountant smiling")
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    call = job.calls.get()
    assert call.backend == "offline"
    assert call.output_file.size > 1000


# --- lost answers and workers dying mid-pass (what the soak provokes at scale) -------------------
def test_a_lost_submit_answer_fails_the_call_instead_of_paying_twice(user, fal):
    fal.chaos = Chaos(timeout_rate=1.0)  # fal queues the request; the answer never comes back
    job = make_job(user, n=2, kind="test_batch")
    services.advance_job(job.pk)
    fal.chaos = None
    job = run_to_end(job)
    assert len(fal.submissions) == 2  # fal-client did not re-POST, the engine did not resubmit
    assert all("x-fal-request-timeout" in r.headers for r in fal.submissions)
    calls = RemoteCall.objects.filter(job=job)
    assert set(calls.values_list("error_code", flat=True)) == {"submit_unknown"}
    assert "이중 과금" in job.error_message
    history = CallAttempt.objects.filter(call__job=job).values_list("outcome", flat=True)
    assert list(history) == ["submit_unknown", "submit_unknown"]


def test_a_refused_connection_on_submit_is_safe_to_retry(user, fal):
    fal.fail("submit", status=503, times=1)  # answered: fal did not queue it
    job = run_to_end(make_job(user))
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submissions) == 1


_deaths = []


def die_once(call):
    """An on_call_finished hook whose worker is killed the first time it runs."""
    if not _deaths:
        _deaths.append(call.pk)
        raise SystemExit("worker killed")


register(
    JobKind(
        name="test_dies_in_hook",
        label="dies",
        deadline_setting="GENERATION_TIMEOUT_SECONDS",
        max_attempts_setting="GENERATION_MAX_ATTEMPTS",
        cost_setting="COST_PER_IMAGE_GENERATION",
        expected_seconds=10,
        on_call_finished="tests.test_engine.die_once",
    )
)


def test_worker_killed_while_finishing_a_call_redoes_it_without_losing_the_result(
    user, fal, settings
):
    _deaths.clear()
    job = make_job(user, kind="test_dies_in_hook")
    with pytest.raises(SystemExit):
        for _ in range(50):
            services.advance_job(job.pk)
    call = RemoteCall.objects.get(job=job)
    assert call.state != CallState.SUCCEEDED  # the pass died: nothing of it was committed
    job = run_to_end(job)
    call.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and call.output_file
    assert len(fal.submissions) == 1  # the request was polled again, not sent again
    folder = Path(settings.MEDIA_ROOT) / Path(call.output_file.name).parent
    assert [p.name for p in folder.iterdir()] == [Path(call.output_file.name).name]


def test_reconcile_clears_temp_downloads_a_killed_worker_left(tmp_path, monkeypatch):
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = tmp_path / f"{services.DOWNLOAD_PREFIX}old"
    fresh = tmp_path / f"{services.DOWNLOAD_PREFIX}fresh"
    other = tmp_path / "someone-elses-file"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    services.reconcile()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, other.name])
