"""The back office in a real browser: support finds a failed training by e-mail, retries it."""

import pytest
from django.contrib.auth import get_user_model

from characters.models import Character
from tests.test_backoffice import failed_training, make_support
from webtoon.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def admin_login(page, live_server, username, password):
    page.goto(live_server.url + "/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")


def test_browser_support_finds_a_failed_training_by_email_and_retries_it(
    page, live_server, settings
):
    settings.MIN_SELECTED_CUTS = 1  # a session of a few cuts (the rule: tests/test_trust.py)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    User = get_user_model()
    carol = User.objects.create_user("carol", "carol@example.com", "pw-carol-123")
    character, job = failed_training(carol)
    someone = User.objects.create_user("dave", "dave@example.com", "pw-dave-123")
    Job.objects.create(owner=someone, kind="training", state="failed", error_code="deadline")
    make_support("sam")

    admin_login(page, live_server, "sam", "pw-support-123")
    page.click("a[href='/admin/jobs/job/']")
    page.fill("#searchbar", "carol@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/jobs/job/?q=carol*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    row = rows.first
    assert "training" in row.inner_text() and "실패" in row.inner_text()
    assert "deadline" in row.inner_text()

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "retry")
    assert page.locator("select[name=action] option[value=purge_now]").count() == 0
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")

    assert "1개 작업을 다시 실행합니다." in page.locator(".messagelist").inner_text()
    state = page.locator("#result_list tbody tr").first.locator(".field-state").inner_text()
    assert state in ("대기 중", "진행 중", "완료")
    job.refresh_from_db()
    assert job.state in ("queued", "running", "succeeded")
    assert Character.objects.get(pk=character.pk).status in ("training", "active")
    assert Job.objects.filter(owner=someone, state="failed").count() == 1
    assert errors == []
