"""The reads every signed-in request and every poll makes, written once as SQL (issue 19):
they find exactly what the ORM finds, on SQLite and PostgreSQL, and signing in and out
behaves as before. Kept poll answers are reused only while what they show still holds."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.hashers import get_hasher
from django.utils import timezone

from characters import checks, curation, generation
from characters.models import Cut
from webtoon.answers import instances
from webtoon.jobs import account
from webtoon.jobs.models import Job, JobState, RemoteCall

from .characters.test_poll_reads import finish, grid, known_of, poll  # noqa: F401 (grid)

pytestmark = [pytest.mark.django_db, pytest.mark.dbkind]


# --- signing in: the session row and the user row ----------------------------------------------
def signed_in(client) -> bool:
    response = client.get("/characters/")
    return response.status_code == 200


def test_a_session_signed_in_before_the_upgrade_stays_signed_in(client, user):
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert signed_in(client)


def test_signing_in_on_the_page_and_out_again(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302 and signed_in(client)
    client.post("/accounts/logout/")
    assert not signed_in(client)


def test_a_session_past_its_age_is_signed_out(client, user, settings):
    """Both stores: ours (its read compares the row's expiry) and, with Redis, Django's
    cached_db (the cache entry lives as long as the session)."""
    settings.SESSION_COOKIE_AGE = 1
    client.force_login(user)
    assert signed_in(client)
    time.sleep(1.5)
    response = client.get("/characters/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_password_change_elsewhere_signs_this_session_out(alice_client, user):
    assert signed_in(alice_client)
    user.set_password("a-new-pw-456")
    user.save()
    assert not signed_in(alice_client)


def test_a_deactivated_account_is_signed_out_on_its_next_request(alice_client, user):
    user.is_active = False
    user.save()
    assert not signed_in(alice_client)


def test_a_wrong_password_is_hashed_once_and_refused(client, user, monkeypatch):
    checked = []
    hasher = type(get_hasher())
    verify = hasher.verify
    monkeypatch.setattr(
        hasher, "verify", lambda self, *a: checked.append(1) or verify(self, *a)
    )
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and not signed_in(client)
    assert len(checked) == 1  # Django's backend, listed after ours, did not check it again


# --- rows as the ORM reads them ------------------------------------------------------------------
def test_a_row_read_as_sql_has_the_values_the_orm_reads(user):
    now = timezone.now()
    job = Job.objects.create(
        owner=user,
        kind="cuts",
        state=JobState.FAILED,
        subject={"session": 7, "cuts": [1, 2], "note": "박사장"},
        progress=0.25,
        deadline_at=now + timedelta(minutes=10),
        cost_estimated=Decimal("0.840"),
        error_code="deadline",
        error_message="늦음",
        started_at=now,
    )
    (read,) = instances(Job, "id = %s", [job.pk])
    orm = Job.objects.get(pk=job.pk)
    for field in Job._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(orm, field.attname), field.name
    assert read.owner == user and not read._state.adding  # a saved row, relations work


def test_a_sessions_jobs_are_the_ones_the_orm_finds_newest_first(user, grid):  # noqa: F811
    session = grid
    first = Job.objects.get(subject__session=session.pk)
    later = generation.start_cut_job(session, list(session.cuts.all()[:2]))
    Job.objects.create(owner=user, kind="cuts", subject={"session": session.pk + 1000})
    Job.objects.create(owner=user, kind="training", subject={"session": session.pk})
    assert [j.pk for j in generation.session_jobs(session)] == [later.pk, first.pk]


# --- answers kept by their rows ------------------------------------------------------------------
def test_a_kept_poll_answer_is_the_answer_made_fresh(alice_client, grid):  # noqa: F811
    from django.core.cache import cache

    session = grid
    finish(session, 1, quality_ok=True, similarity=0.3)
    made, kept = poll(alice_client, session), poll(alice_client, session)
    cache.clear()
    assert made == kept == poll(alice_client, session)


def test_a_running_check_stops_counting_when_its_time_is_up(
    alice_client,
    grid,  # noqa: F811
    monkeypatch,
):
    """No row changes when a quality check runs past CHECK_BLOCKS_SECONDS: the clock does, and
    the grid kept from before must not be answered after. (A check that long is asked for
    again, which changes rows: not here, where only the clock may move.)"""
    monkeypatch.setattr(checks, "recheck_stale_cuts", lambda **kwargs: 0)
    session = grid
    for number in range(1, 25):
        finish(session, number, quality_ok=True, similarity=0.3)
    # Cut 24's check started almost CHECK_BLOCKS_SECONDS ago and has no verdict yet.
    Cut.objects.filter(session=session, number=24).update(quality_ok=None)
    started = timezone.now() - timedelta(seconds=curation.CHECK_BLOCKS_SECONDS - 5)
    checked = Cut.objects.get(session=session, number=24)
    RemoteCall.objects.filter(pk=checked.call_id).update(finished_at=started)
    assert "남은 검사 1장" in poll(alice_client, session)
    assert "남은 검사 1장" in poll(alice_client, session)  # and still, a moment later
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        html = poll(alice_client, session)
    assert "남은 검사" not in html and "다음 단계: 24장으로 캐릭터 학습" in html


def test_a_changed_setting_is_not_answered_from_before(alice_client, grid, settings):  # noqa: F811
    session = grid
    for number in range(1, 25):
        finish(session, number, quality_ok=True, similarity=0.3)
    Cut.objects.filter(session=session, number__gt=10).update(selected=False)
    assert "최소 15장을 선택해야" in poll(alice_client, session)
    settings.MIN_SELECTED_CUTS = 8
    assert "다음 단계: 10장으로 캐릭터 학습" in poll(alice_client, session)


@pytest.mark.parametrize("change", ["the job ran past its deadline", "fal paused the account"])
def test_a_change_outside_the_cut_rows_shows_on_the_next_poll(
    alice_client,
    grid,  # noqa: F811
    change,
):
    """What the grid shows besides its cuts: the session's jobs and the account's state. A
    poll answered just before must not be answered again after."""
    session = grid
    before = poll(alice_client, session)
    assert "생성이 지연" not in before and "일시적으로 생성이 멈췄습니다" not in before
    if change == "the job ran past its deadline":
        Job.objects.filter(subject__session=session.pk).update(error_code="deadline")
        expected = "생성이 지연되고 있습니다"
    else:
        account.pause(RuntimeError("User is locked. Reason: Exhausted balance"))
        expected = "일시적으로 생성이 멈췄습니다"
    assert expected in poll(alice_client, session)
    job = Job.objects.get(subject__session=session.pk)
    body = alice_client.get(f"/api/character/generation-status/{job.public_id}").json()
    assert expected in body["message"] + body["wait_message"]


def test_only_the_steady_poll_is_kept(alice_client, grid, monkeypatch):  # noqa: F811
    """A poll whose browser already knows every cell is kept; one that gets cells back is
    made for its own `known` and made again next time (a client making up `known` values
    must not fill the cache)."""
    from characters import views

    made = []
    context_of = views.curation_context
    monkeypatch.setattr(views, "curation_context", lambda *a: made.append(1) or context_of(*a))
    session = grid
    first = poll(alice_client, session)
    poll(alice_client, session)
    assert len(made) == 2  # every cell went back both times: nothing kept
    steady = known_of(first)
    poll(alice_client, session, steady)
    poll(alice_client, session, steady)
    poll(alice_client, session, steady)
    assert len(made) == 3  # the steady poll was made once
    for made_up in ("1.x.y", "2.a.b", "3.c.d"):
        poll(alice_client, session, made_up)
    assert len(made) == 6
