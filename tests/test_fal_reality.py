"""fal as it really behaves (issue 14, FAL.md §5), on the fal path: fal-client through the
HTTP fake. Results on fal's GCS bucket, uploads that expire, one account of few slots shared
fairly, account-level refusals (circuit breaker), typed model errors, honest charges, prices
per megapixel."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from characters import training
from characters.enums import CharacterStatus
from webtoon.imaging.fal import url_allowed
from webtoon.jobs import account, hosting, pricing, services
from webtoon.jobs.models import (
    IN_FLIGHT_CALL_STATES,
    CallAttempt,
    CallState,
    Charge,
    FalAccount,
    HostedFile,
    Job,
    JobState,
    RemoteCall,
)
from webtoon.jobs.presenters import job_dict
from webtoon.jobs.services import CallSpec

from .characters import test_training
from .characters.test_training import TRAINER, drive, prepared

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_sessions(settings):
    settings.MIN_SELECTED_CUTS = 1  # sessions of a few cuts (the rule is tested elsewhere)

LORA = "fal-ai/flux-lora"
KONTEXT = "fal-ai/flux-pro/kontext"
HOSTS = ["v3.fal.media", "v3b.fal.media", "fal.media"]
PREFIXES = ["storage.googleapis.com/fal-flux-lora/", "storage.googleapis.com/falserverless/"]


def image_job(user, n=1, *, prompt="cut", size="square_hd"):
    calls = [
        CallSpec(LORA, {"prompt": f"{prompt} {i}", "image_size": size}, slot=i) for i in range(n)
    ]
    return services.create_job(owner=user, kind="image", calls=calls, start=False)


def run_to_end(job, passes=200):
    for _ in range(passes):
        job = services.advance_job(job.pk)
        if job.is_terminal:
            return job
    raise AssertionError(f"job still {job.state}")


# --- 1. where results live ------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://storage.googleapis.com/fal-flux-lora/abc_pytorch_lora_weights.safetensors",
        "https://storage.googleapis.com/falserverless/example_inputs/photo.png",
        "https://v3.fal.media/files/lion/x.safetensors",
        "https://v3b.fal.media/files/b/x.jpg",
    ],
)
def test_fal_buckets_and_cdn_hosts_are_allowed(url):
    assert url_allowed(url, HOSTS, PREFIXES)


@pytest.mark.parametrize(
    "url",
    [
        "https://storage.googleapis.com/someone-elses-bucket/x.safetensors",  # same host
        "https://storage.googleapis.com/fal-flux-lora-evil/x.safetensors",  # prefix lookalike
        "https://storage.googleapis.com/fal-flux-lora/../other/x.safetensors",
        "https://storage.googleapis.com/fal-flux-lora/%2e%2e/other/x",
        "https://storage.googleapis.com.evil.com/fal-flux-lora/x",
        "http://storage.googleapis.com/fal-flux-lora/x.safetensors",  # not https
        "https://user@storage.googleapis.com/fal-flux-lora/x",
        "https://storage.googleapis.com:8443/fal-flux-lora/x",
        "https://evil.example.com/fal-flux-lora/x.safetensors",
    ],
)
def test_other_buckets_and_tricks_are_refused(url):
    assert not url_allowed(url, HOSTS, PREFIXES)


def test_lora_from_fals_gcs_bucket_is_backed_up_with_its_real_bytes(alice_client, user, fal):
    fal.lora_host = "gcs"
    character = prepared(user)
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    assert job.state == JobState.SUCCEEDED
    character.refresh_from_db()
    request_id = fal.submitted(TRAINER)[0].request_id
    expected = (
        f"https://storage.googleapis.com/fal-flux-lora/{request_id}_pytorch_lora_weights.safetensors"
    )
    assert character.lora_url == expected
    assert character.status == CharacterStatus.ACTIVE
    assert character.lora_file_backed_up is True
    weights = fal.files[f"gcs/fal-flux-lora/{request_id}_pytorch_lora_weights.safetensors"][0]
    with character.lora_file.open("rb") as fh:
        assert fh.read() == weights
    body = alice_client.get(f"/api/character/{character.public_id}").json()
    assert body["lora_file_backed_up"] is True
    # The backup ZIP carries those bytes too.
    import io
    import zipfile

    backup = alice_client.get(f"/api/character/{character.public_id}/download-backup")
    assert backup.status_code == 200
    data = b"".join(backup.streaming_content) if backup.streaming else backup.content
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        loras = [n for n in zf.namelist() if n.endswith(".safetensors")]
        assert loras and zf.read(loras[0]) == weights


def test_a_foreign_bucket_on_the_same_host_is_not_downloaded(user, fal):
    foreign = "https://storage.googleapis.com/not-fal/x.safetensors"
    fal.fail(
        "result",
        endpoint=TRAINER,
        status=200,
        body={"diffusers_lora_file": {"url": foreign}, "config_file": {"url": foreign}},
    )
    character = prepared(user)
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    character.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and character.lora_file_backed_up is False
    assert job.calls.get().error_code == "download_refused"
    assert fal.count("file") == 0


def test_an_old_upload_is_uploaded_again_before_reuse(user, fal, settings):
    """fal keeps media "at least 7 days": a training ZIP hosted 8 days ago (packaged, then
    trained a week later) is uploaded again before the trainer is asked, and the request
    never names the stale URL."""
    settings.FAL_UPLOAD_MAX_AGE_SECONDS = 6 * 24 * 3600
    fal.upload_max_age = 7 * 24 * 3600
    character = prepared(user)
    first_url = character.training_data_url
    assert HostedFile.objects.get(url=first_url).storage_name == character.training_data.name
    uploads_before = len(fal.uploads)
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=True):
        job = drive(
            training.start_training(
                owner=user, character_id=character.public_id, confirm_cost=True
            )
        )
    assert job.state == JobState.SUCCEEDED
    sent = fal.submitted(TRAINER)[0].arguments["images_data_url"]
    assert sent != first_url
    assert len(fal.uploads) == uploads_before + 1
    with character.training_data.open("rb") as fh:
        assert fal.files[sent.rsplit("/files/", 1)[-1]][0] == fh.read()
    assert HostedFile.objects.get(url=first_url).replaced_by == sent
    # A later reuse finds the fresh copy at once (no third upload).
    assert hosting.fresh_url(first_url, "fal") == sent


def test_a_young_upload_is_reused_as_is(user, fal, settings):
    settings.FAL_UPLOAD_MAX_AGE_SECONDS = 6 * 24 * 3600
    character = prepared(user)
    url = character.training_data_url
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=True):
        drive(
            training.start_training(
                owner=user, character_id=character.public_id, confirm_cost=True
            )
        )
    assert fal.submitted(TRAINER)[0].arguments["images_data_url"] == url


def test_an_expired_upload_fails_at_fal_without_the_refresh(user, fal, settings):
    """The fake's expiry is real: with reuse checks off, the stale ZIP URL makes fal's runner
    fail with a typed download error (what the refresh above prevents)."""
    settings.FAL_UPLOAD_MAX_AGE_SECONDS = 10 * 365 * 24 * 3600
    fal.upload_max_age = 7 * 24 * 3600
    character = prepared(user)
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=True):
        job = drive(
            training.start_training(
                owner=user, character_id=character.public_id, confirm_cost=True
            )
        )
    assert job.state == JobState.FAILED
    assert "404" in job.calls.get().error_message


def test_trainer_results_are_remembered_for_re_hosting(user, fal):
    character = prepared(user)
    drive(training.start_training(owner=user, character_id=character.public_id, confirm_cost=True))
    character.refresh_from_db()
    hosted = HostedFile.objects.get(url=character.lora_url)
    assert hosted.storage_name == character.lora_file.name


# --- 2. one account, many users ----------------------------------------------------------------
@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")


@pytest.fixture
def by_hand(monkeypatch):
    """Runners woken by a freed slot are recorded, not run inline: the test drives the
    passes itself, as two workers would."""
    woken: list[int] = []
    monkeypatch.setattr(services, "async_task", lambda task, job_id: woken.append(job_id))
    return woken


def in_flight() -> int:
    return RemoteCall.objects.filter(state__in=IN_FLIGHT_CALL_STATES).count()


def test_two_slots_share_the_account_fairly_between_users(user, bob, fal, settings, by_hand):
    """alice starts 24 cuts, bob starts 24 while hers run: with 2 slots bob's first request
    goes out within about 2 calls, not after alice's whole set, and never more than 2 are
    in flight at fal."""
    settings.FAL_ACCOUNT_CONCURRENCY = 2
    fal.concurrency = 2
    alice_job = image_job(user, 24, prompt="alice")
    services.advance_job(alice_job.pk)
    assert len(fal.submissions) == 2 and in_flight() == 2
    bob_job = image_job(bob, 24, prompt="bob")
    peak = 0
    for _ in range(200):
        for job in (alice_job, bob_job):
            services.advance_job(job.pk)
            peak = max(peak, in_flight())
        if all(Job.objects.get(pk=j.pk).is_terminal for j in (alice_job, bob_job)):
            break
    assert peak <= 2
    owners = [r.arguments["prompt"].split()[0] for r in fal.submissions]
    assert owners.index("bob") <= 3  # after alice's 2 in flight, at most one more of hers
    # Round robin from then on: neither waits behind the other's whole set.
    assert owners[2:12].count("bob") >= 4
    assert Job.objects.get(pk=alice_job.pk).state == JobState.SUCCEEDED
    assert Job.objects.get(pk=bob_job.pk).state == JobState.SUCCEEDED
    assert len(fal.submissions) == 48  # nothing submitted twice


def test_work_waiting_in_our_queue_says_how_many_are_ahead(user, bob, fal, settings, by_hand):
    settings.FAL_ACCOUNT_CONCURRENCY = 2
    alice_job = image_job(user, 5, prompt="alice")
    services.advance_job(alice_job.pk)
    bob_job = image_job(bob, 3, prompt="bob")
    bob_job = services.advance_job(bob_job.pk)
    calls = list(bob_job.calls.order_by("slot"))
    assert all(c.state == CallState.PENDING for c in calls)
    # alice holds both slots and has 3 more waiting: bob's first is next in line, and the
    # job shows that place (kept on its first held call).
    assert [c.queue_position for c in calls] == [0, None, None]
    from webtoon.jobs.account import fair_order

    order = fair_order("fal", timezone.now())
    owners = [RemoteCall.objects.get(pk=pk).job.owner.username for pk in order]
    # alice's two at fal count as turns she took: bob catches up first (at a tie, the one
    # served least recently goes first), then turns alternate.
    assert owners == ["bob", "bob", "bob", "alice", "alice", "alice"]
    assert job_dict(bob_job)["wait_message"] == "대기 중 (앞에 0건)"
    assert job_dict(bob_job)["state_label"] == "대기 중"  # not "진행 중" beside it
    alice_calls = list(Job.objects.get(pk=alice_job.pk).calls.order_by("slot"))
    assert [c.state for c in alice_calls[:2]] == [CallState.SUBMITTED] * 2


def test_a_held_job_never_times_out_while_it_waits_for_a_slot(
    user, bob, fal, settings, by_hand
):
    settings.FAL_ACCOUNT_CONCURRENCY = 1
    settings.GENERATION_TIMEOUT_SECONDS = 600
    fal.run_seconds = 0
    fal.queue_polls = 0
    fal.running_polls = 1000  # alice's request holds the only slot
    alice_job = image_job(user, 1, prompt="alice")
    services.advance_job(alice_job.pk)
    bob_job = image_job(bob, 1, prompt="bob")
    start = timezone.now()
    for minutes in (5, 9, 15):
        with time_machine.travel(start + timedelta(minutes=minutes)):
            bob_job = services.advance_job(bob_job.pk)
            assert bob_job.state != JobState.FAILED
            assert bob_job.calls.get().state == CallState.PENDING
            assert bob_job.deadline_at > timezone.now()
    fal.running_polls = 0
    with time_machine.travel(start + timedelta(minutes=16)):
        run_to_end(alice_job)
        bob_job = run_to_end(bob_job)
    assert bob_job.state == JobState.SUCCEEDED
    # fal's start_timeout counts from our submit: the kind's whole allowance, not what was
    # left after waiting 16 minutes in our queue.
    sent = fal.submitted()[-1]
    assert float(sent.headers["x-fal-request-timeout"]) == 600.0


def test_unlimited_by_default_submits_everything_at_once(user, fal):
    job = image_job(user, 6)
    services.advance_job(job.pk)
    assert len(fal.submissions) == 6


def test_a_freed_slot_wakes_the_job_next_in_line(user, bob, fal, settings, by_hand):
    settings.FAL_ACCOUNT_CONCURRENCY = 1
    woken = by_hand
    alice_job = image_job(user, 1, prompt="alice")
    services.advance_job(alice_job.pk)
    bob_job = image_job(bob, 1, prompt="bob")
    assert services.run_job(bob_job.pk) == "held"  # nothing at fal: no looping worker
    run_to_end(alice_job)
    assert bob_job.pk in woken


# --- 3. refusals that concern the account -------------------------------------------------------
@pytest.mark.parametrize("status", [403, 401])
def test_a_refused_account_pauses_everything_and_resumes_by_itself(
    user, bob, fal, settings, status, client
):
    settings.FAL_ACCOUNT_PROBE_SECONDS = 60
    settings.ADMINS = [("ops", "ops@example.com")]
    fal.lock_account(status)
    job = image_job(user, 2, prompt="alice")
    job = services.advance_job(job.pk)
    state = FalAccount.objects.get(pk=1)
    assert state.paused_at is not None and state.status_code == status
    # Not failed, not charged to the user's attempts, no word about their photo.
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    calls = list(job.calls.all())
    assert all(c.state == CallState.PENDING for c in calls)
    assert all(c.max_attempts - c.attempts >= 3 for c in calls)
    shown = job_dict(job)
    assert shown["wait_message"] == "일시적으로 생성이 멈췄습니다. 자동으로 다시 시작합니다."
    assert shown["error_message"] == "" and "사진" not in shown["wait_message"]
    assert shown["state_label"] == "일시 정지"
    refused = fal.count("submit")  # the round that learnt it (both went out at once)
    # Other users' work does not go to fal either.
    other = image_job(bob, 1, prompt="bob")
    services.advance_job(other.pk)
    assert fal.count("submit") == refused
    # Staff hear about it once.
    assert len(mail.outbox) == 1 and "fal" in mail.outbox[0].subject
    # Within the minute nothing is tried again; after it, one probe; still locked: paused.
    services.advance_job(job.pk)
    assert fal.count("submit") == refused
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        services.advance_job(job.pk)
    assert fal.count("submit") == refused + 1  # one probe, not the whole set
    assert FalAccount.objects.get(pk=1).paused_at is not None
    # fal accepts again: the next probe resumes everyone, and the work finishes.
    fal.unlock_account()
    with time_machine.travel(timezone.now() + timedelta(seconds=125)):
        job = run_to_end(job)
        other = run_to_end(other)
    assert job.state == JobState.SUCCEEDED and other.state == JobState.SUCCEEDED
    assert FalAccount.objects.get(pk=1).paused_at is None
    assert len(mail.outbox) == 1
    assert all(c.attempts <= c.max_attempts for c in job.calls.all())


def test_the_admin_shows_the_paused_account_to_staff(admin_client, user, fal):
    fal.lock_account(403)
    services.advance_job(image_job(user).pk)
    page = admin_client.get("/admin/").content.decode()
    assert 'data-testid="fal-account-paused"' in page
    assert "Exhausted balance" in page


def test_a_403_about_a_file_is_not_an_account_refusal(user, fal):
    fal.fail("submit", status=403, body={"detail": "Failed to download https://x/y.jpg"})
    job = run_to_end(image_job(user))
    assert FalAccount.objects.filter(paused_at__isnull=False).count() == 0
    assert job.state == JobState.FAILED and job.error_code == "file_gone"


def test_a_paused_training_waits_instead_of_failing(alice_client, user, fal):
    character = prepared(user)
    fal.lock_account(403)
    job = training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    for _ in range(3):
        job = services.advance_job(job.pk)
    character.refresh_from_db()
    assert character.status != CharacterStatus.FAILED
    body = alice_client.get(f"/api/character/training-status/{job.public_id}").json()
    assert body["status"] != "failed"
    assert body["wait_message"] == "일시적으로 생성이 멈췄습니다. 자동으로 다시 시작합니다."
    assert "다른 이미지" not in body["message"]


# --- typed model errors, retries and charges ------------------------------------------------------
def test_a_content_policy_violation_is_never_resubmitted_and_may_be_charged(user, fal):
    fal.model_error(type="content_policy_violation", msg="sensitive content")
    job = run_to_end(image_job(user))
    assert job.state == JobState.FAILED
    assert len(fal.submissions) == 1
    assert job.error_code == "content_policy"
    shown = job_dict(job)
    assert "안전 정책" in shown["error_message"]
    attempt = CallAttempt.objects.get(call__job=job)
    assert attempt.charge == Charge.POSSIBLE and attempt.cost == Decimal("0.035")
    assert job.cost_recorded == Decimal("0.035")  # the ledger holds what fal may have billed
    assert services.charge_state(job) == Charge.POSSIBLE


def test_a_validation_error_is_not_resubmitted(user, fal):
    fal.model_error(type="value_error", msg="image too small", retryable=None)
    job = run_to_end(image_job(user))
    assert job.state == JobState.FAILED and job.error_code == "input_invalid"
    assert len(fal.submissions) == 1


def test_what_fal_marks_retryable_is_tried_again(user, fal):
    fal.model_error(type="runner_unavailable", msg="try again", retryable=True, times=1)
    job = run_to_end(image_job(user))
    assert job.state == JobState.SUCCEEDED
    assert len(fal.submissions) == 2


def test_a_refusal_at_submit_is_not_charged(user, fal):
    fal.fail("submit", status=400, body={"detail": "bad request"})
    job = run_to_end(image_job(user))
    assert services.charge_state(job) == Charge.NONE and job.cost_recorded == 0


def test_training_refused_after_running_does_not_claim_no_charge(alice_client, user, fal):
    character = prepared(user)
    fal.model_error(type="value_error", msg="not enough faces", match=lambda a: "steps" in a)
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    assert job.state == JobState.FAILED and len(fal.submitted(TRAINER)) == 1
    body = alice_client.get(f"/api/character/training-status/{job.public_id}").json()
    assert "비용이 청구되지 않았습니다" not in body["message"]
    assert "청구되었을 수 있습니다" in body["message"]


def test_training_refused_at_submit_says_not_charged(alice_client, user, fal):
    character = prepared(user)
    fal.fail("submit", endpoint=TRAINER, status=400, body={"detail": "bad"}, times=5)
    job = drive(
        training.start_training(owner=user, character_id=character.public_id, confirm_cost=True)
    )
    body = alice_client.get(f"/api/character/training-status/{job.public_id}").json()
    assert job.state == JobState.FAILED
    assert "비용이 청구되지 않았습니다" in body["message"]


def test_a_request_cancelled_while_queued_is_not_charged(user, fal, settings):
    settings.GENERATION_TIMEOUT_SECONDS = 60
    fal.queue_polls = 1000
    job = image_job(user)
    services.advance_job(job.pk)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        job = services.advance_job(job.pk)
    assert job.state == JobState.FAILED and job.error_code == "deadline"
    assert services.charge_state(job) == Charge.NONE


# --- 4. prices ----------------------------------------------------------------------------------
def test_prices_follow_the_real_image_size(user, fal):
    fal.fail(
        "result",
        status=200,
        body={
            "images": [
                {
                    "url": fal.add_file("big.jpg", _jpeg((1024, 2048))),
                    "width": 1024,
                    "height": 2048,
                    "content_type": "image/jpeg",
                }
            ],
            "seed": 1,
            "has_nsfw_concepts": [False],
        },
    )
    job = image_job(user, size="square")
    assert job.cost_estimated == Decimal("0.009")  # 512² = 0.25 MP at $0.035
    job = run_to_end(job)
    assert job.cost_recorded == Decimal("0.070")  # what fal really made: 2 MP


def test_kontext_is_priced_per_image(settings):
    assert pricing.estimate(KONTEXT, {"aspect_ratio": "1:1"}, Decimal("0.02")) == Decimal("0.040")
    settings.FAL_PRICES = {**settings.FAL_PRICES, KONTEXT: "0.05/image"}
    assert pricing.estimate(KONTEXT, {}, Decimal("0.02")) == Decimal("0.050")


def test_an_unlisted_endpoint_costs_its_kinds_flat_price():
    assert pricing.estimate("fal-ai/unknown", {}, Decimal("0.02")) == Decimal("0.020")


def test_cost_notice_ledger_and_back_office_agree(admin_client, user, fal):
    job = run_to_end(image_job(user, 3, size="landscape_4_3"))
    per_call = pricing.estimate(LORA, {"image_size": "landscape_4_3"}, Decimal("0.03"))
    assert job.cost_estimated == per_call * 3 == job.cost_recorded
    assert sum(c.cost for c in job.calls.all()) == job.cost_recorded
    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert str(job.cost_recorded) in page


def _jpeg(size):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_fal_answers_202_while_not_done_and_the_client_reads_it(user, fal):
    fal.queue_polls = 2
    job = run_to_end(image_job(user))
    assert job.state == JobState.SUCCEEDED
    assert fal.count("status") >= 3


def test_hosting_remembers_each_upload(user, fal, settings):
    settings.WEBTOON_BACKEND = "fal"
    url = hosting.upload(
        "fal", b"abc", content_type="image/jpeg", file_name="p.jpg", storage_name="u/1/p.jpg"
    )
    row = HostedFile.objects.get(url=url)
    assert row.storage_name == "u/1/p.jpg" and row.backend == "fal"
    assert not hosting.is_stale(row)
    assert hosting.is_stale(row, timezone.now() + timedelta(days=6, seconds=1))
    assert account.paused() is None


# --- orphaned requests adopted through fal's webhook (issue 18) ---------------------------------
def _webhook(client, key, request_id, url):
    import json

    from .characters.test_training import signature_headers

    raw = json.dumps(
        {"request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": {}}
    ).encode()
    path = url.split("https://webtoon.example.com", 1)[1]
    headers = signature_headers(key, request_id, raw)
    return client.post(path, raw, content_type="application/json", headers=headers)


signing_key = test_training.fal_key  # fal's webhook signing key, its JWKS served by the fake

@pytest.fixture
def public_site(settings):
    settings.WEBTOON_PUBLIC_URL = "https://webtoon.example.com"


def test_a_lost_submit_answer_is_adopted_when_fals_webhook_names_it(
    client, user, fal, signing_key, public_site
):
    fal.lost_submit_answers = 1
    job = image_job(user)
    job = services.advance_job(job.pk)
    call = job.calls.get()
    assert call.state == CallState.ORPHANED and call.request_id is None
    assert not job.is_terminal
    assert len(fal.submissions) == 1  # fal has it; we do not know its id
    for _ in range(3):  # never resubmitted while it waits
        job = services.advance_job(job.pk)
    assert len(fal.submissions) == 1
    sent = fal.submissions[0]
    assert "call=" in sent.webhook_url
    answer = _webhook(client, signing_key, sent.request_id, sent.webhook_url)
    assert answer.status_code == 200
    call.refresh_from_db()
    assert call.request_id == sent.request_id and call.state != CallState.ORPHANED
    job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED and len(fal.submissions) == 1
    assert job.cost_recorded == Decimal("0.035")  # charged once, as what it was
    attempt = CallAttempt.objects.get(call=call)
    assert attempt.request_id == sent.request_id and attempt.charge == Charge.CHARGED


def test_a_webhook_cannot_adopt_a_call_it_did_not_sign_or_one_not_orphaned(
    client, user, fal, signing_key, public_site
):
    fal.lost_submit_answers = 1
    job = services.advance_job(image_job(user).pk)
    call = job.calls.get()
    sent = fal.submissions[0]
    forged = f"https://webtoon.example.com/api/fal/webhook?call={call.pk}%3Aforged"
    assert _webhook(client, signing_key, sent.request_id, forged).status_code == 200
    call.refresh_from_db()
    assert call.state == CallState.ORPHANED and call.request_id is None
    # A working call's URL with another request id: nothing changes.
    other = services.advance_job(image_job(user, prompt="second").pk).calls.get()
    assert other.state == CallState.SUBMITTED
    assert services.adopt("req-xyz", services.webhook_url(other).split("call=")[1]) is None


def test_an_orphan_never_named_fails_as_submit_unknown_at_its_deadline(
    user, fal, public_site, settings
):
    settings.GENERATION_TIMEOUT_SECONDS = 60
    fal.lost_submit_answers = 1
    job = services.advance_job(image_job(user).pk)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        job = services.advance_job(job.pk)
    assert job.state == JobState.FAILED and job.error_code == "submit_unknown"
    assert len(fal.submissions) == 1


def test_without_a_public_url_a_lost_answer_fails_at_once(user, fal):
    fal.lost_submit_answers = 1
    job = run_to_end(image_job(user))
    assert job.state == JobState.FAILED and job.error_code == "submit_unknown"
    assert len(fal.submissions) == 1


# --- what users read on the pages ---------------------------------------------------------------
def test_pages_say_generation_is_paused_without_blaming_the_photo(alice_client, user, fal):
    from characters import generation

    from .characters.test_training import make_session

    session = make_session(user, cuts=0)
    fal.lock_account(403)  # even the photo's upload is refused: the account, not the photo
    job = generation.start_generation(owner=user, session_id=session.public_id)
    services.advance_job(job.pk)
    paused_words = "일시적으로 생성이 멈췄습니다. 자동으로 다시 시작합니다."
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert paused_words in page and "다른 이미지" not in page
    jobs_page = alice_client.get("/jobs/").content.decode()
    assert paused_words in jobs_page
    status = alice_client.get(f"/api/character/generation-status/{job.public_id}").json()
    assert status["wait_message"] == paused_words and status["status"] == "generating"


def test_pages_show_the_place_in_our_queue(alice_client, user, bob, fal, settings, by_hand):
    settings.FAL_ACCOUNT_CONCURRENCY = 1
    services.advance_job(image_job(bob, 3, prompt="bob").pk)
    mine = services.advance_job(image_job(user, 1, prompt="alice").pk)
    assert mine.calls.get().state == CallState.PENDING
    jobs_page = alice_client.get("/jobs/").content.decode()
    assert "대기 중 (앞에 0건)" in jobs_page


def test_the_fakes_own_webhooks_adopt_an_orphan_end_to_end(client, user, fal, public_site):
    """The soak's fal fake signs and sends webhooks itself (JWKS at fal's URLs): what it
    sends is what our endpoint verifies and adopts."""
    from django.core.cache import cache

    from webtoon.imaging import webhooks

    cache.delete(webhooks.JWKS_CACHE_KEY)
    fal.sign_webhooks()
    fal.lost_submit_answers = 1
    job = services.advance_job(image_job(user).pk)
    assert job.calls.get().state == CallState.ORPHANED
    deliveries = fal.due_webhooks()  # run_seconds 0: finished at once, nobody polled it
    assert len(deliveries) == 1 and fal.due_webhooks() == []  # sent once
    url, body, headers = deliveries[0]
    path = url.split("https://webtoon.example.com", 1)[1]
    answer = client.post(path, body, content_type="application/json", headers=headers)
    assert answer.status_code == 200
    job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED and len(fal.submissions) == 1


def test_an_orphan_holds_a_slot_only_for_a_while(user, bob, fal, settings, public_site, by_hand):
    settings.FAL_ACCOUNT_CONCURRENCY = 1
    settings.FAL_ORPHAN_SLOT_SECONDS = 120
    fal.lost_submit_answers = 1
    lost = services.advance_job(image_job(user, prompt="alice").pk)
    assert lost.calls.get().state == CallState.ORPHANED
    waiting = services.advance_job(image_job(bob, prompt="bob").pk)
    assert waiting.calls.get().state == CallState.PENDING  # the orphan may be running at fal
    with time_machine.travel(timezone.now() + timedelta(seconds=121)):
        waiting = services.advance_job(waiting.pk)
    assert waiting.calls.get().state == CallState.SUBMITTED
    assert len(fal.submissions) == 2


def test_a_webhook_adopts_a_call_whose_worker_died_before_any_pass_saw_it(
    client, user, fal, signing_key, public_site
):
    """The worker sent the submit and died: the call still reads SUBMITTING when fal's
    webhook comes (before the next pass would call it an orphan). It is adopted all the same,
    and the next pass follows it instead of failing it."""
    from webtoon.jobs.account import mark_submitting

    job = image_job(user)
    call = job.calls.get()
    mark_submitting([call], timezone.now())
    from webtoon.imaging import get_backend

    request_id = get_backend("fal").submit(
        LORA, call.arguments, webhook_url=services.webhook_url(call)
    )
    sent = fal.submissions[0]
    assert _webhook(client, signing_key, request_id, sent.webhook_url).status_code == 200
    call.refresh_from_db()  # adopted (the poke may already have followed it to the end)
    assert call.request_id == request_id and call.state != CallState.FAILED
    job = run_to_end(job)
    assert job.state == JobState.SUCCEEDED and len(fal.submissions) == 1
