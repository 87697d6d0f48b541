"""Hot status reads (issue 19): a poll of a training in flight reuses its rows for a second, a
cached API token stops working the moment it is revoked, the account's pause shows at once,
and the reconciler's batched enqueue leaves every task in the queue."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from characters.models import Character
from characters.training import TRAINING
from webtoon.accounts.services import create_api_token, revoke_api_token
from webtoon.jobs import account
from webtoon.jobs import services as jobs
from webtoon.jobs.models import CallState, Job, JobState, RemoteCall

pytestmark = pytest.mark.django_db


def in_flight(user, n: int = 1) -> tuple[Job, RemoteCall]:
    """A training as the runner leaves it between passes, looked at just now (no refresh)."""
    now = timezone.now()
    character = Character.objects.create(
        owner=user, name="박사장", trigger_word=f"sks_parkboss{n}", status="training"
    )
    job = Job.objects.create(
        owner=user,
        kind=TRAINING.name,
        state=JobState.RUNNING,
        subject={"character": character.pk},
        progress=0.42,
        started_at=now - timedelta(minutes=5),
        last_checked_at=now,
    )
    call = RemoteCall.objects.create(
        job=job,
        endpoint="fal-ai/flux-lora-portrait-trainer",
        arguments={},
        output_kind="lora",
        backend="fal",
        state=CallState.RUNNING,
        request_id=f"req-{n}",
        progress=0.42,
        current_step=630,
        total_steps=1500,
        started_at=now - timedelta(minutes=5),
    )
    Character.objects.filter(pk=character.pk).update(training_job=job)
    return job, call


class Queries:
    def __init__(self):
        self.statements = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


def read(client, job, raw):
    return client.get(
        f"/api/character/training-status/{job.public_id}", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )


@pytest.fixture
def raw_token(user):
    return create_api_token(user=user, name="script")[1]


def test_a_poll_within_the_window_reads_no_rows_and_a_later_one_sees_the_change(
    client, user, raw_token, settings
):
    settings.STATUS_CACHE_SECONDS = 2  # whole seconds: Redis keeps a key at least one
    job, call = in_flight(user)
    assert read(client, job, raw_token).json()["current_step"] == 630
    RemoteCall.objects.filter(pk=call.pk).update(current_step=750, progress=0.5)
    queries = Queries()
    with connection.execute_wrapper(queries):
        again = read(client, job, raw_token)
    assert again.json()["current_step"] == 630
    assert queries.count == 0  # token, rows and the account state all reused
    time.sleep(2.1)  # real time: the Redis pass's keys expire on the server's clock
    later = read(client, job, raw_token).json()
    assert (later["current_step"], later["progress_percent"]) == (750, 50)


def test_a_cached_status_is_not_served_to_another_user(client, user, other_user, settings):
    settings.STATUS_CACHE_SECONDS = 60
    job, _call = in_flight(user)
    assert read(client, job, create_api_token(user=user, name="a")[1]).status_code == 200
    other = create_api_token(user=other_user, name="b")[1]
    response = read(client, job, other)
    assert response.status_code == 404 and "detail" in response.json()


def test_a_revoked_token_fails_at_once_although_its_user_was_cached(client, user, raw_token):
    job, _call = in_flight(user)
    assert read(client, job, raw_token).status_code == 200
    revoke_api_token(user.api_tokens.get())
    assert read(client, job, raw_token).status_code == 401


def test_a_password_change_or_a_deactivated_user_ends_a_cached_token(client, user):
    job, _call = in_flight(user)
    first, second = (create_api_token(user=user, name=n)[1] for n in ("a", "b"))
    assert read(client, job, first).status_code == 200
    user.set_password("a-new-password-42")
    user.save()
    assert read(client, job, first).status_code == 401
    fresh = create_api_token(user=user, name="c")[1]
    assert read(client, job, fresh).status_code == 200
    user.is_active = False
    user.save()
    assert read(client, job, fresh).status_code == 401
    assert read(client, job, second).status_code == 401


def test_the_account_pause_shows_in_the_next_poll(client, user, raw_token):
    job, _call = in_flight(user)
    RemoteCall.objects.filter(job=job).update(state=CallState.PENDING, queue_position=3)
    assert read(client, job, raw_token).json()["wait_message"] == "대기 중 (앞에 3건)"
    account.pause(RuntimeError("User is locked. Reason: Exhausted balance"))
    assert read(client, job, raw_token).json()["wait_message"] == str(account.PAUSED_MESSAGE)
    Job.objects.filter(pk=job.pk).update(state=JobState.WAITING)  # resume() wakes no pass here
    account.resume()
    assert read(client, job, raw_token).json()["wait_message"] == "대기 중 (앞에 3건)"


def _stale_jobs(user, n: int) -> list[Job]:
    created = [in_flight(user, i)[0] for i in range(n)]
    stale = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk__in=[j.pk for j in created]).update(last_checked_at=stale)
    return created


def test_the_reconciler_bulk_inserts_into_the_orm_queue(user, monkeypatch):
    from django_q.brokers.orm import ORM
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    monkeypatch.setattr(Conf, "SYNC", False)  # the ORM broker, as a deployment without Redis
    monkeypatch.setattr(jobs, "get_broker", lambda: ORM(list_key=Conf.CLUSTER_NAME))
    monkeypatch.setattr(jobs, "RECONCILE_BATCH", 3)
    created = _stale_jobs(user, 7)
    queries = Queries()
    with connection.execute_wrapper(queries):
        assert jobs.reconcile() == 7
    inserts = [sql for sql in queries.statements if sql.startswith("INSERT")]
    assert len(inserts) == 3  # one INSERT per batch of 3, not one per task
    tasks = [SignedPackage.loads(row.payload) for row in OrmQ.objects.all()]
    assert sorted(t["args"][0] for t in tasks) == sorted(j.pk for j in created)
    assert {t["func"] for t in tasks} == {jobs.RUN_JOB_TASK}


def test_the_reconciler_enqueues_in_transactions_on_other_brokers(user, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # a real broker, not the suite's inline queue
    monkeypatch.setattr(jobs, "get_broker", lambda: object())  # e.g. Redis
    monkeypatch.setattr(jobs, "RECONCILE_BATCH", 3)
    enqueued = []

    def async_task(func, job_id):
        # The test runs in a transaction already: a batch's atomic() is a savepoint in it.
        enqueued.append((job_id, tuple(connection.savepoint_ids)))

    monkeypatch.setattr(jobs, "async_task", async_task)
    created = _stale_jobs(user, 7)
    assert jobs.reconcile() == 7
    assert sorted(job_id for job_id, _ in enqueued) == sorted(j.pk for j in created)
    batches = [ids for _, ids in enqueued]
    assert all(ids for ids in batches)  # every enqueue inside a batch's transaction
    assert len(set(batches)) == 3  # 7 tasks, 3 a batch: 3 transactions
