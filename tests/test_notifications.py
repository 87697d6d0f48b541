"""Notifications: the nav badge, the list page, opening one, mark-all-read, and the e-mail."""

import re
import smtplib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import RequestFactory
from django.utils.html import escape

from webtoon.notifications import services
from webtoon.notifications.context_processors import unread_notifications
from webtoon.notifications.models import Notification

pytestmark = pytest.mark.django_db

BADGE = re.compile(r'<span class="badge" data-testid="notification-badge">(\d+)</span>')
DONE = "'민지' 캐릭터 학습이 완료되었습니다."


def badge_count(html: str) -> int | None:
    match = BADGE.search(html)
    return int(match.group(1)) if match else None


def notify_done(user, link="/characters/7/", **kwargs) -> Notification:
    return services.notify(user, kind="training_completed", message=DONE, link=link, **kwargs)


# --- creating -----------------------------------------------------------------------------------
def test_notify_creates_unread_row(user):
    notification = notify_done(user)

    row = Notification.objects.get(owner=user)
    assert row == notification
    assert (row.kind, row.message, row.link) == ("training_completed", DONE, "/characters/7/")
    assert row.read_at is None
    assert services.unread_count(user) == 1


def test_notify_external_link_is_dropped(user):
    notification = notify_done(user, link="https://evil.example/phish")

    assert notification.link == ""


# --- nav badge ----------------------------------------------------------------------------------
def test_nav_badge_shows_unread_count(alice_client, user, other_user):
    notify_done(user)
    notify_done(user)
    notify_done(other_user)

    html = alice_client.get("/").content.decode()

    assert badge_count(html) == 2
    assert re.search(r'<a href="/notifications/">\s*알림\s*<span class="badge"', html)


def test_nav_badge_hidden_without_unread(alice_client, user):
    html = alice_client.get("/").content.decode()

    assert '<a href="/notifications/">알림</a>' in html
    assert badge_count(html) is None


def test_nav_badge_partial_returns_fresh_count(alice_client, user):
    notify_done(user)

    response = alice_client.get("/notifications/badge/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert badge_count(response.content.decode()) == 1


def test_nav_badge_poll_follows_every_change_at_once(alice_client, user):
    # The count is cached between polls (issue 19); each change shows on the very next one.
    def poll():
        return badge_count(alice_client.get("/notifications/badge/").content.decode())

    first = notify_done(user)
    assert poll() == 1
    assert poll() == 1
    notify_done(user)
    assert poll() == 2  # a new notification
    alice_client.get(f"/notifications/{first.pk}/open/")
    assert poll() == 1  # one opened
    alice_client.post("/notifications/read-all/")
    assert poll() is None  # all read


def test_a_badge_read_before_the_notification_commits_is_not_kept(
    alice_client, user, django_capture_on_commit_callbacks
):
    # The worker's "학습 완료" is written inside its transaction; a badge poll that lands
    # before the commit reads (and caches) the old count. The commit forgets it again.
    def poll():
        return badge_count(alice_client.get("/notifications/badge/").content.decode())

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            notify_done(user)
            cache.set(services._unread_key(user), 0, 60)  # what that poll cached
    assert poll() == 1


def test_nav_badge_cached_count_is_never_another_users(client, user, other_user):
    notify_done(user)
    notify_done(user)
    notify_done(other_user)
    client.force_login(user)
    assert badge_count(client.get("/notifications/badge/").content.decode()) == 2
    client.force_login(other_user)
    assert badge_count(client.get("/notifications/badge/").content.decode()) == 1
    assert badge_count(client.get("/").content.decode()) == 1


def test_nav_badge_partial_anonymous_stops_polling(client):
    response = client.get("/notifications/badge/", HTTP_HX_REQUEST="true")

    assert response.status_code == 286  # htmx: stop polling (no login page in the nav)
    assert response.content == b""


def test_unread_context_anonymous_makes_no_query(django_assert_num_queries):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()

    with django_assert_num_queries(0):
        context = unread_notifications(request)

    assert context == {"unread_notifications": 0}


# --- list page ----------------------------------------------------------------------------------
def test_notification_list_shows_own_newest_first(alice_client, user, other_user):
    old = services.notify(user, kind="training_failed", message="학습이 실패했습니다.")
    new = notify_done(user)
    services.notify(other_user, kind="training_completed", message="bob의 비밀 캐릭터")

    response = alice_client.get("/notifications/")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(escape(DONE)) < html.index("학습이 실패했습니다.")
    assert "bob의 비밀 캐릭터" not in html
    assert f'href="/notifications/{new.pk}/open/"' in html
    assert f'href="/notifications/{old.pk}/open/"' in html
    assert html.count('data-unread="true"') == 2
    assert "모두 읽음" in html


def test_notification_list_paginates_fifty(alice_client, user):
    for i in range(55):
        services.notify(user, kind="test", message=f"알림 번호 {i:02d}")

    first = alice_client.get("/notifications/").content.decode()
    second = alice_client.get("/notifications/?page=2").content.decode()

    assert first.count('data-testid="notification"') == 50
    assert "알림 번호 54" in first and "알림 번호 04" not in first
    assert second.count('data-testid="notification"') == 5
    assert "알림 번호 04" in second


def test_notification_list_empty_says_so(alice_client):
    html = alice_client.get("/notifications/").content.decode()

    assert "아직 알림이 없습니다." in html
    assert "모두 읽음" not in html


def test_notification_list_anonymous_redirects_to_login(client):
    response = client.get("/notifications/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- opening one --------------------------------------------------------------------------------
def test_notification_open_marks_read_and_redirects(alice_client, user):
    notification = notify_done(user)

    response = alice_client.get(f"/notifications/{notification.pk}/open/")

    assert response.status_code == 302
    assert response["Location"] == "/characters/7/"
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert badge_count(alice_client.get("/").content.decode()) is None


def test_notification_open_without_link_goes_to_list(alice_client, user):
    notification = services.notify(user, kind="test", message="링크 없는 알림")

    response = alice_client.get(f"/notifications/{notification.pk}/open/")

    assert response["Location"] == "/notifications/"


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example/phish",
        "javascript:alert(1)",
        "/\t/evil.example",
    ],
)
def test_notification_open_external_link_not_followed(alice_client, user, link):
    # Written straight to the table (as the admin could): notify() would already drop it.
    notification = Notification.objects.create(owner=user, kind="test", message="x", link=link)

    response = alice_client.get(f"/notifications/{notification.pk}/open/")

    assert response.status_code == 302
    assert response["Location"] == "/notifications/"


def test_notification_open_other_users_is_404(alice_client, other_user):
    theirs = notify_done(other_user)

    response = alice_client.get(f"/notifications/{theirs.pk}/open/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


# --- mark all read ------------------------------------------------------------------------------
def test_mark_all_read_clears_badge(alice_client, user, other_user):
    notify_done(user)
    notify_done(user)
    theirs = notify_done(other_user)

    response = alice_client.post("/notifications/read-all/", follow=True)

    assert response.redirect_chain[-1][0] == "/notifications/"
    html = response.content.decode()
    assert "모든 알림을 읽음으로 표시했습니다." in html
    assert badge_count(html) is None
    assert 'data-unread="true"' not in html
    assert html.count('data-testid="notification"') == 2
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_by_get_is_refused(alice_client, user):
    notify_done(user)

    response = alice_client.get("/notifications/read-all/")

    assert response.status_code == 405
    assert services.unread_count(user) == 1


# --- e-mail -------------------------------------------------------------------------------------
def test_notify_emails_user_with_address(user, settings, django_capture_on_commit_callbacks):
    settings.WEBTOON_PUBLIC_URL = "https://webtoon.example.com/"
    settings.DEFAULT_FROM_EMAIL = "studio@example.com"

    with django_capture_on_commit_callbacks(execute=True):
        notify_done(user, email_subject="캐릭터 학습 완료")

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["alice@example.com"]
    assert sent.from_email == "studio@example.com"
    assert sent.subject == "캐릭터 학습 완료"
    assert DONE in sent.body
    assert "https://webtoon.example.com/characters/7/" in sent.body


def test_notify_email_default_subject_and_path(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.notify(user, kind="test", message="첫 줄\n둘째 줄", link="/jobs/")

    sent = mail.outbox[0]
    assert sent.subject == "[웹툰 캐릭터 스튜디오] 첫 줄"
    assert "/jobs/" in sent.body


def test_notify_email_waits_for_commit(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        notify_done(user)

    assert mail.outbox == []
    for callback in callbacks:  # the commit sends it
        callback()
    assert len(mail.outbox) == 1


def test_notify_without_address_sends_no_email(db, django_capture_on_commit_callbacks):
    nobody = get_user_model().objects.create_user("noemail", password="pw-noemail-123")

    with django_capture_on_commit_callbacks(execute=True):
        notify_done(nobody)

    assert mail.outbox == []
    assert services.unread_count(nobody) == 1


def test_notify_email_failure_is_logged_not_raised(
    user, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broken_send_mail(*args, **kwargs):
        raise smtplib.SMTPException("mail server down")

    monkeypatch.setattr(services, "send_mail", broken_send_mail)

    with django_capture_on_commit_callbacks(execute=True):
        notification = notify_done(user)

    assert Notification.objects.filter(pk=notification.pk).exists()
    assert "e-mail to the owner failed" in caplog.text


# --- admin --------------------------------------------------------------------------------------
def test_admin_notification_search_by_owner(admin_client, user, other_user):
    notify_done(user)
    notify_done(other_user)

    response = admin_client.get("/admin/notifications/notification/?q=alice@example.com")

    assert response.status_code == 200
    html = response.content.decode()
    assert ">alice</a>" in html
    assert ">bob</a>" not in html
