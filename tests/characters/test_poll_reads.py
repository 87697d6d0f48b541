"""The pages' polls read less (issue 19) and still show every change on the next poll: the
curation grid's 2 s poll (cells, counter, checks, waiting line) and a My Characters card
while it trains, each only to its owner."""

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from characters import generation
from characters.models import Character, Cut
from webtoon.jobs.models import CallState, Job, JobState

from .test_curation import astronaut_photo
from .test_status_cache import in_flight

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["worker queue", "inline queue"])
def grid(request, user, fal, settings):
    """24 cuts in flight, their job looked at a moment ago (no pass runs inside a poll); the
    poll reads the jobs once with a worker queue, again after the refresh when it is inline."""
    photo = astronaut_photo(user)
    session = generation.select_style(
        owner=user, photo_id=photo.public_id, style_id="original", custom_prompt=None
    )
    job = generation.start_generation(owner=user, session_id=session.public_id)
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, last_checked_at=timezone.now() + timedelta(hours=1)
    )
    for cut in Cut.objects.filter(session=session).select_related("call"):
        cut.call.state = CallState.RUNNING
        cut.call.save()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": request.param == "inline queue"}
    return session


def poll(client, session, known: str = "") -> str:
    url = f"/characters/sessions/{session.public_id}/poll/"
    response = client.get(url, {"known": known}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def known_of(html: str) -> str:
    return unquote(re.search(r"known=([^\"&]*)", html)[1])


def cells(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-testid="cut" data-number="(\d+)"', html)}


def finish(session, number: int, *, quality_ok=None, **fields) -> None:
    cut = Cut.objects.select_related("call").get(session=session, number=number)
    name = default_storage.save(f"u/{session.owner_id}/cuts/{number}.jpg", ContentFile(b"x"))
    Cut.objects.filter(pk=cut.pk).update(image=name, quality_ok=quality_ok, **fields)
    cut.call.state, cut.call.finished_at = CallState.SUCCEEDED, timezone.now()
    cut.call.save()


def fragment(html: str, element_id: str) -> str:
    """One element of a page or poll, without the poll's out-of-band marker."""
    match = re.search(rf'<(\w+) [^>]*id="{element_id}".*?</\1>', html, re.S)
    assert match, element_id
    return re.sub(r'\s*hx-swap-oob="true"\s*', " ", match[0]).replace(" >", ">")


def test_a_finished_cut_its_check_and_a_toggle_show_in_the_next_poll(alice_client, grid):
    session = grid
    first = poll(alice_client, session)
    assert cells(first) == set(range(1, 25))  # a fresh page's poller knows nothing yet
    known = known_of(first)
    assert cells(poll(alice_client, session, known)) == set()  # nothing changed

    finish(session, 3)  # the image came back; its quality check is running
    html = poll(alice_client, session, known)
    assert cells(html) == {3}
    assert "품질 검사 중" in html and "생성 중... 1/24컷 완료" in html
    known = known_of(html)

    Cut.objects.filter(session=session, number=3).update(quality_ok=True, similarity=0.3)
    html = poll(alice_client, session, known)
    assert cells(html) == {3}
    assert 'data-testid="similarity"' in html and "품질 검사 중" not in html
    assert "선택: 1/24장" in html
    known = known_of(html)

    alice_client.post(f"/characters/sessions/{session.public_id}/cuts/3/toggle/", {})
    html = poll(alice_client, session, known)
    assert "선택: 0/24장" in html  # the counter follows the toggle at once
    assert cells(html) == set()  # and the clicked checkbox is left alone


def test_the_poll_shows_what_the_page_shows(alice_client, grid):
    session = grid
    for number in range(1, 17):
        finish(session, number, quality_ok=True, similarity=0.3)
    finish(session, 17)  # still being checked
    Cut.objects.filter(session=session, number=2).update(selected=False)
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    html = poll(alice_client, session)
    for element_id in ("summary", "progress-line", "next-step-box", "cut-2", "cut-17", "cut-20"):
        assert fragment(html, element_id) == fragment(page, element_id), element_id
    assert "선택: 16/24장" in html  # 1-17 have an image, 2 is unticked
    assert "남은 검사 1장" in html or "컷 생성이 끝나면" in html


def test_the_poll_says_when_the_cuts_wait_in_line(alice_client, grid):
    session = grid
    job = Job.objects.get(subject__session=session.pk)
    job.calls.update(state=CallState.SUBMITTED, queue_position=3)
    assert "대기 중 (앞에 3건)" in poll(alice_client, session)
    job.calls.filter(pk=job.calls.order_by("pk").first().pk).update(state=CallState.RUNNING)
    assert "대기 중" not in poll(alice_client, session)  # one runs: nobody waits any more


def test_a_cut_set_past_its_deadline_says_so_in_the_poll(alice_client, grid):
    session = grid
    Job.objects.filter(subject__session=session.pk).update(error_code="deadline")
    assert "생성이 지연되고 있습니다" in poll(alice_client, session)


def test_someone_elses_grid_is_a_404_for_the_poll(client, other_user, grid):
    client.force_login(other_user)
    url = f"/characters/sessions/{grid.public_id}/poll/"
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404


# --- My Characters card ------------------------------------------------------------------------
def card_of(html: str, character: Character) -> str:
    match = re.search(rf'<article [^>]*id="card-{character.public_id}".*?</article>', html, re.S)
    assert match
    return match[0]


def test_the_card_poll_shows_the_list_pages_card_and_its_progress(alice_client, user):
    job, call = in_flight(user)
    character = Character.objects.get(training_job=job)
    url = f"/characters/{character.public_id}/card/"
    card = alice_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    listed = alice_client.get("/characters/").content.decode()
    assert card_of(card, character) == card_of(listed, character)
    assert "학습 중" in card and 'hx-trigger="every 5s"' in card

    Job.objects.filter(pk=job.pk).update(progress=0.97)
    card = alice_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "학습 중 97%" in card  # the next poll shows the job's progress

    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, progress=1)
    Character.objects.filter(pk=character.pk).update(status="active")
    card = alice_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "학습 중" not in card and "every 5s" not in card  # done: the card stops polling


def test_the_card_poll_is_the_owners_only(client, user, other_user):
    job, _call = in_flight(user)
    character = Character.objects.get(training_job=job)
    client.force_login(other_user)
    assert client.get(f"/characters/{character.public_id}/card/").status_code == 404
    Character.objects.filter(pk=character.pk).update(status="deleted")
    client.force_login(user)
    assert client.get(f"/characters/{character.public_id}/card/").status_code == 404


# --- generation-status API -------------------------------------------------------------------
def api_status(client, session) -> dict:
    job = Job.objects.get(subject__session=session.pk)
    response = client.get(f"/api/character/generation-status/{job.public_id}")
    assert response.status_code == 200
    return response.json()


def test_generation_status_shows_each_change_on_the_next_read(alice_client, grid):
    session = grid
    body = api_status(alice_client, session)
    assert body["status"] == "generating" and body["completed_cuts"] == 0
    assert [c["state"] for c in body["cuts"]] == ["generating"] * 24

    finish(session, 5, quality_ok=False, similarity=0.9, quality_reasons=["흐림"])
    body = api_status(alice_client, session)
    cut = body["cuts"][4]
    assert body["completed_cuts"] == 1 and cut["state"] == "completed"
    assert cut["url"] == body["preview_urls"][4] and cut["url"].startswith("/media/u/")
    assert (cut["quality_ok"], cut["similarity"], cut["quality_reasons"]) == (False, 0.9, ["흐림"])
    assert body["preview_urls"][:4] == [None] * 4

    Job.objects.get(subject__session=session.pk).calls.update(
        state=CallState.SUBMITTED, queue_position=2
    )
    assert api_status(alice_client, session)["wait_message"] == "대기 중 (앞에 2건)"


def test_generation_status_of_someone_elses_cuts_is_a_404(client, other_user, grid):
    client.force_login(other_user)
    job = Job.objects.get(subject__session=grid.pk)
    assert client.get(f"/api/character/generation-status/{job.public_id}").status_code == 404
