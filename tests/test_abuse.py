"""Abuse (issue 18): login throttle per account and per address (django-axes, in the
database), a site-wide daily spend cap with a staff alert, a sign-up throttle per address,
e-mail verification before paid actions, limits on heavy free actions, API tokens that die
with the password, and staff who need the support permission to read users' files."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import jpeg_bytes
from tests.episodes.helpers import episode, seed_presets, upload, uploaded_panel
from tests.test_limits import client_for, spent
from webtoon.accounts import services as accounts
from webtoon.accounts.models import ApiToken, PendingEmailVerification, RateEvent
from webtoon.jobs.models import Job
from webtoon.notifications.services import SITE_CAP_ALERT_KEY

pytestmark = pytest.mark.django_db


def paid(client, capture):
    """One paid action: a single generated image (the jobs API)."""
    with capture(execute=True):
        return client.post(
            "/api/jobs/image", {"prompt": "a cat in an office"}, content_type="application/json"
        )

User = get_user_model()


def login(client, username, password, *, ip="10.0.0.1", path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


# --- login throttle ---------------------------------------------------------------------------
@pytest.fixture
def throttled(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return settings


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client, user, throttled):
    for _ in range(4):
        assert login(client, "alice", "wrong").status_code == 200
    assert login(client, "alice", "wrong").status_code == 429  # the fifth locks

    response = login(client, "alice", "pw-alice-123")

    assert response.status_code == 429
    text = response.content.decode()
    assert "로그인 시도가 너무 많습니다. 15분 후에 다시 시도해주세요." in text
    assert response["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session


def test_the_account_lock_holds_from_another_address(client, user, throttled):
    for i in range(5):
        login(client, "alice", "wrong", ip=f"10.0.1.{i}")

    assert login(Client(), "alice", "pw-alice-123", ip="10.9.9.9").status_code == 429


def test_one_address_trying_many_accounts_is_locked_out(client, user, other_user, throttled):
    for i in range(5):
        login(client, f"nobody{i}", "wrong", ip="10.0.0.7")

    assert login(Client(), "bob", "pw-bob-123", ip="10.0.0.7").status_code == 429
    # the account itself is fine from elsewhere
    assert login(Client(), "bob", "pw-bob-123", ip="10.0.0.8").status_code == 302


def test_fewer_failures_still_let_the_right_password_in(client, user, throttled):
    for _ in range(4):
        login(client, "alice", "wrong")

    assert login(client, "alice", "pw-alice-123").status_code == 302


def test_admin_login_is_throttled_too_with_the_korean_message(client, db, throttled):
    User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    for _ in range(5):
        login(client, "boss", "wrong", path="/admin/login/")

    response = login(client, "boss", "pw-boss-123", path="/admin/login/")

    assert response.status_code == 429
    assert "로그인 시도가 너무 많습니다" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_failures_are_kept_in_the_database(client, user, throttled):
    from axes.models import AccessAttempt

    login(client, "alice", "wrong")
    assert AccessAttempt.objects.filter(username="alice").exists()


# --- site-wide daily spend cap ----------------------------------------------------------------
@pytest.fixture
def site_cap(settings):
    settings.RATE_LIMIT_COSTLY = ""
    settings.DAILY_SPEND_CAP_USD = 0
    settings.DAILY_SITE_SPEND_CAP_USD = 10.0
    settings.ADMINS = [("ops", "ops@example.com")]
    return settings


def test_site_cap_refuses_everyone_once_all_users_together_reach_it(
    user, other_user, site_cap, fal, django_capture_on_commit_callbacks
):
    spent(user, "6.00")
    spent(other_user, "4.00")
    carol = User.objects.create_user("carol", "carol@example.com", "pw-carol-123")

    response = paid(client_for(carol), django_capture_on_commit_callbacks)

    assert response.status_code == 429
    assert "서비스 전체의 사용 한도" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    assert not Job.objects.filter(owner=carol).exists()


def test_site_cap_below_the_limit_lets_work_through(
    user, site_cap, fal, django_capture_on_commit_callbacks
):
    spent(user, "5.00")
    assert paid(client_for(user), django_capture_on_commit_callbacks).status_code == 201


def test_site_cap_alerts_admins_by_mail_once_a_day(
    user, other_user, site_cap, fal, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    cache.delete(SITE_CAP_ALERT_KEY.format(day=timezone.localdate().isoformat()))
    spent(user, "10.00")
    for _ in range(3):
        assert paid(client_for(other_user), django_capture_on_commit_callbacks).status_code == 429

    alerts = [m for m in mail.outbox if "ops@example.com" in m.to]
    assert len(alerts) == 1
    assert "사이트 전체 일일 사용 한도" in alerts[0].subject


def test_site_cap_shows_a_banner_in_the_admin(user, site_cap):
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    admin = client_for(boss)
    assert "site-cap-alert" not in admin.get("/admin/").content.decode()

    spent(user, "10.00")

    page = admin.get("/admin/").content.decode()
    assert 'data-testid="site-cap-alert"' in page
    assert "$10.00 / 한도 $10.00" in page


# --- sign-up throttle and e-mail verification -------------------------------------------------
def signup(client, name, *, ip="10.0.0.1", email=""):
    return client.post(
        "/accounts/signup/",
        {"username": name, "email": email, "password1": "Pw-x7!long-enough",
         "password2": "Pw-x7!long-enough"},
        REMOTE_ADDR=ip,
    )


def test_signups_from_one_address_are_throttled_with_a_korean_message(db, settings):
    settings.SIGNUP_RATE_LIMIT = "2/1h"
    assert signup(Client(), "u1").status_code == 302
    assert signup(Client(), "u2").status_code == 302

    response = signup(Client(), "u3")

    assert response.status_code == 429
    text = response.content.decode()
    assert "이 주소에서 가입이 너무 많습니다. 60분 후에 다시 시도해주세요." in text
    assert response["Retry-After"] == "3600"
    assert not User.objects.filter(username="u3").exists()
    assert signup(Client(), "u4", ip="10.0.0.2").status_code == 302


def test_signup_throttle_counts_in_the_database(db, settings):
    settings.SIGNUP_RATE_LIMIT = "2/1h"
    signup(Client(), "u1", ip="10.0.0.5")
    assert RateEvent.objects.filter(key="signup:10.0.0.5").count() == 1


def test_client_address_behind_a_trusted_proxy(db, settings, rf):
    from webtoon.accounts.throttle import client_ip

    request = rf.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(request) == "10.1.1.1"  # no proxy configured: the header is not believed
    settings.WEBTOON_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"  # what our proxy saw, not what the client wrote


@pytest.fixture
def verification(settings):
    settings.SIGNUP_REQUIRE_EMAIL_VERIFICATION = True
    settings.RATE_LIMIT_COSTLY = ""
    settings.DAILY_SPEND_CAP_USD = 0
    return settings


def test_signup_with_verification_needs_an_address(client, verification):
    response = signup(client, "newbie")
    assert response.status_code == 200
    assert not User.objects.filter(username="newbie").exists()


def test_unverified_user_cannot_pay_until_the_link_is_opened(
    client, verification, fal, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert signup(client, "newbie", email="newbie@example.com").status_code == 302
    newbie = User.objects.get(username="newbie")
    assert PendingEmailVerification.objects.filter(user=newbie).exists()
    (message,) = [m for m in mail.outbox if m.to == ["newbie@example.com"]]
    link = next(line for line in message.body.splitlines() if "/accounts/verify/" in line)

    refused = paid(client, django_capture_on_commit_callbacks)
    assert refused.status_code == 403
    assert "이메일 인증" in refused.json()["detail"]
    assert not Job.objects.filter(owner=newbie).exists()

    assert client.get(link[link.index("/accounts/"):]).status_code == 302
    assert not PendingEmailVerification.objects.filter(user=newbie).exists()
    assert paid(client, django_capture_on_commit_callbacks).status_code == 201


def test_a_forged_verification_link_does_nothing(client, verification):
    newbie = User.objects.create_user("newbie", "n@example.com", "pw-n-123")
    PendingEmailVerification.objects.create(user=newbie, email="n@example.com")
    client.get("/accounts/verify/not-a-token/")
    assert PendingEmailVerification.objects.filter(user=newbie).exists()


def test_verification_is_on_by_default_when_mail_really_goes_out(monkeypatch):
    import importlib

    import webtoon.settings as real

    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    try:
        assert importlib.reload(real).SIGNUP_REQUIRE_EMAIL_VERIFICATION is True
        monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
        assert importlib.reload(real).SIGNUP_REQUIRE_EMAIL_VERIFICATION is False
    finally:
        monkeypatch.delenv("EMAIL_BACKEND")
        importlib.reload(real)


# --- heavy free actions -----------------------------------------------------------------------
def photo_post(client):
    photo = SimpleUploadedFile("me.jpg", jpeg_bytes(), content_type="image/jpeg")
    return client.post("/api/character/upload-photo", {"consent": "true", "photo": photo})


def test_photo_uploads_over_the_limit_are_429_with_retry_after(alice_client, settings):
    settings.RATE_LIMIT_UPLOADS = "2/10m"
    photo_post(alice_client)
    photo_post(alice_client)

    response = photo_post(alice_client)

    assert response.status_code == 429
    assert response.json() == {"detail": "요청이 너무 많습니다. 10분 후에 다시 시도해주세요."}
    assert 590 <= int(response["Retry-After"]) <= 600


def test_upload_limit_is_per_user(alice_client, other_user, settings):
    settings.RATE_LIMIT_UPLOADS = "1/10m"
    photo_post(alice_client)
    assert photo_post(alice_client).status_code == 429
    assert photo_post(client_for(other_user)).status_code != 429


def test_panel_uploads_count_against_the_upload_limit(alice_client, user, settings):
    seed_presets()
    settings.RATE_LIMIT_UPLOADS = "1/10m"
    ep = episode(user)
    url = f"/api/episode/{ep.public_id}/panels/upload"
    assert alice_client.post(url, {"image": upload()}).status_code == 201
    response = alice_client.post(url, {"image": upload()})
    assert response.status_code == 429
    assert "Retry-After" in response


def test_exports_over_the_limit_are_429(alice_client, user, settings):
    seed_presets()
    settings.RATE_LIMIT_EXPORTS = "1/10m"
    ep = episode(user)
    uploaded_panel(user, ep)
    url = f"/api/episode/{ep.public_id}/export"
    body = {"format": "png"}
    assert alice_client.post(url, body, content_type="application/json").status_code == 202
    response = alice_client.post(url, body, content_type="application/json")
    assert response.status_code == 429
    assert response.json()["detail"].startswith("요청이 너무 많습니다.")


def test_previews_over_the_limit_are_a_korean_429_not_an_error(alice_client, user, settings):
    seed_presets()
    settings.RATE_LIMIT_PREVIEWS = "2/10m"
    ep = episode(user)
    panel = uploaded_panel(user, ep)
    url = f"/episodes/panel/{panel.public_id}/preview.png"
    assert alice_client.get(url).status_code == 200
    assert alice_client.get(url).status_code == 200

    response = alice_client.get(url)

    assert response.status_code == 429
    assert "요청이 너무 많습니다" in response.content.decode()
    assert response["Retry-After"]


def test_restores_over_the_limit_are_refused_with_a_korean_message(alice_client, settings):
    settings.RATE_LIMIT_RESTORE = "1/1h"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", "{}")

    def post():
        backup = SimpleUploadedFile("b.zip", buf.getvalue(), content_type="application/zip")
        return alice_client.post("/api/character/restore-from-backup", {"backup": backup})

    assert post().status_code == 422  # a bad backup still counts: the unpacking was done
    response = post()
    assert response.status_code == 429
    assert response.json()["detail"] == "요청이 너무 많습니다. 60분 후에 다시 시도해주세요."

    page = alice_client.post(
        "/characters/restore/",
        {"backup": SimpleUploadedFile("b.zip", buf.getvalue(), content_type="application/zip")},
    )
    assert "요청이 너무 많습니다" in page.content.decode()


# --- API tokens die with the password ---------------------------------------------------------
def bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def test_password_change_revokes_api_tokens(alice_client, user):
    _token, raw = accounts.create_api_token(user=user, name="script")
    assert Client().get("/api/jobs/", headers=bearer(raw)).status_code == 200

    response = alice_client.post(
        "/accounts/password_change/",
        {"old_password": "pw-alice-123", "new_password1": "New-pw-9!long",
         "new_password2": "New-pw-9!long"},
    )

    assert response.status_code == 302
    assert Client().get("/api/jobs/", headers=bearer(raw)).status_code == 401
    assert ApiToken.objects.get(user=user).revoked_at is not None


def test_password_reset_revokes_api_tokens(user):
    _token, raw = accounts.create_api_token(user=user, name="script")
    new = "New-pw-9!long"
    form = SetPasswordForm(user, {"new_password1": new, "new_password2": new})
    assert form.is_valid()
    form.save()
    assert Client().get("/api/jobs/", headers=bearer(raw)).status_code == 401


def test_other_saves_of_the_user_keep_the_tokens(user):
    _token, raw = accounts.create_api_token(user=user, name="script")
    user.first_name = "앨리스"
    user.save()
    user.check_password("pw-alice-123")  # a login (and a possible hash upgrade) too
    assert Client().get("/api/jobs/", headers=bearer(raw)).status_code == 200


def test_site_cap_setting_zero_is_off(user, settings):
    from webtoon.jobs import limits

    settings.DAILY_SITE_SPEND_CAP_USD = 0
    spent(user, "1000.00")
    limits.check_costly(user, Decimal("1.00"), lock=False)  # no exception


def test_profile_offers_to_send_the_verification_link_again(
    client, verification, db, django_capture_on_commit_callbacks
):
    newbie = User.objects.create_user("newbie", "n@example.com", "pw-n-123")
    PendingEmailVerification.objects.create(user=newbie, email="n@example.com")
    client.force_login(newbie)
    assert 'data-testid="verify-pending"' in client.get("/accounts/profile/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/verify/resend/")
        client.post("/accounts/verify/resend/")  # a second one within the minute is not sent

    sent = [m for m in mail.outbox if m.to == ["n@example.com"]]
    assert len(sent) == 1
    link = next(line for line in sent[0].body.splitlines() if "/accounts/verify/" in line)
    client.get(link[link.index("/accounts/"):])
    assert not PendingEmailVerification.objects.filter(user=newbie).exists()
