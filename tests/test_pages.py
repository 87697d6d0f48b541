"""The HTML pages a person sees: login, signup, home, profile (API tokens), jobs, media."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from webtoon.accounts.models import ApiToken
from webtoon.jobs import services
from webtoon.jobs.models import JobState

pytestmark = pytest.mark.django_db

OFFLINE_BANNER = "미리보기 모드: 실제 AI 대신 예시 그림이 나옵니다"
RAW_TOKEN = re.compile(r"wt_[A-Za-z0-9_-]{40,}")


def run_image_job(user, prompt, capture):
    """An image job, run to the end on the offline backend (the queue is inline in tests)."""
    with capture(execute=True):
        job = services.create_image_job(user, prompt)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    return job


def output_name(job) -> str:
    return job.calls.get().output_file.name


# --- login, signup, home ----------------------------------------------------------------------
def test_home_anonymous_redirects_to_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_is_korean(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "로그인" in html
    assert "비밀번호" in html
    assert '<html lang="ko">' in html


def test_login_page_is_korean_when_browser_asks_for_english(client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    html = response.content.decode()
    assert "로그인" in html
    assert "Log in" not in html


def test_login_with_wrong_password_shows_korean_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert "아이디 또는 비밀번호가 올바르지 않습니다." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_with_right_password_lands_on_home(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "pw-alice-123"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/"
    assert "alice님, 환영합니다!" in response.content.decode()


def test_signup_creates_user_and_logs_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "Str0ng-passw0rd-xyz",
            "password2": "Str0ng-passw0rd-xyz",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/"
    html = response.content.decode()
    assert "환영합니다" in html
    assert "newbie" in html
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "newbie@example.com"
    assert int(client.session["_auth_user_id"]) == user.pk


def test_signup_with_mismatched_passwords_creates_nobody(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "Str0ng-passw0rd-xyz", "password2": "other-pw-123"},
    )

    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="newbie").exists()
    assert "_auth_user_id" not in client.session


def test_home_logged_in_shows_nav_links(alice_client):
    response = alice_client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "환영합니다" in html
    for label, url in (
        ("새 캐릭터", "/characters/new/"),
        ("내 캐릭터", "/characters/"),
        ("씬 만들기", "/scenes/"),
    ):
        assert re.search(rf'<a href="{re.escape(url)}">\s*{label}\s*</a>', html), label


def test_home_offline_backend_shows_banner(alice_client):
    response = alice_client.get("/")

    assert OFFLINE_BANNER in response.content.decode()


def test_home_fal_backend_hides_banner(alice_client, settings):
    settings.WEBTOON_BACKEND = "fal"

    response = alice_client.get("/")

    assert response.status_code == 200
    assert OFFLINE_BANNER not in response.content.decode()


# --- profile: API tokens ----------------------------------------------------------------------
def test_profile_token_full_value_shown_only_once(alice_client):
    created = alice_client.post("/accounts/profile/", {"name": "my script"})

    assert created.status_code == 200
    raws = RAW_TOKEN.findall(created.content.decode())
    assert len(raws) == 1
    raw = raws[0]
    token = ApiToken.objects.get(name="my script")
    assert raw.startswith(token.prefix)

    later = alice_client.get("/accounts/profile/").content.decode()
    assert raw not in later
    assert RAW_TOKEN.search(later) is None
    assert f"{token.prefix}…" in later
    assert "my script" in later


def test_profile_token_authenticates_api(alice_client, client):
    created = alice_client.post("/accounts/profile/", {"name": "cli"})
    raw = RAW_TOKEN.search(created.content.decode()).group(0)
    alice_client.logout()

    response = client.get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200


def test_profile_revoke_disables_token(alice_client, user):
    created = alice_client.post("/accounts/profile/", {"name": "cli"})
    raw = RAW_TOKEN.search(created.content.decode()).group(0)
    token = ApiToken.objects.get(user=user)

    response = alice_client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)

    assert response.redirect_chain[-1][0] == "/accounts/profile/"
    html = response.content.decode()
    assert "토큰을 폐기했습니다." in html
    assert "폐기됨" in html
    token.refresh_from_db()
    assert token.revoked_at is not None
    alice_client.logout()
    assert alice_client.get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_profile_revoke_other_users_token_is_404(alice_client, other_user):
    from webtoon.accounts.services import create_api_token

    bobs_token, _raw = create_api_token(user=other_user, name="bob's")

    response = alice_client.post(f"/accounts/tokens/{bobs_token.pk}/revoke/")

    assert response.status_code == 404
    bobs_token.refresh_from_db()
    assert bobs_token.revoked_at is None


def test_profile_revoke_by_get_is_refused(alice_client, user):
    from webtoon.accounts.services import create_api_token

    token, _raw = create_api_token(user=user, name="cli")

    response = alice_client.get(f"/accounts/tokens/{token.pk}/revoke/")

    assert response.status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


# --- jobs pages -------------------------------------------------------------------------------
def test_job_list_shows_only_own_jobs_with_output(
    alice_client, user, other_user, django_capture_on_commit_callbacks
):
    mine = run_image_job(user, "a cat at a desk", django_capture_on_commit_callbacks)
    theirs = run_image_job(other_user, "a dog on a bike", django_capture_on_commit_callbacks)

    response = alice_client.get("/jobs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="job-{mine.public_id}"' in html
    assert f'src="/media/{output_name(mine)}"' in html
    assert str(theirs.public_id) not in html
    assert output_name(theirs) not in html
    assert html.count('data-testid="job-card"') == 1
    assert "완료" in html


def test_job_list_post_starts_a_job(alice_client, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/jobs/", {"prompt": "a tax accountant", "image_size": "square_hd"}
        )

    assert response.status_code == 302
    job = user.jobs.get()
    assert job.state == JobState.SUCCEEDED
    page = alice_client.get("/jobs/").content.decode()
    assert "작업을 시작했습니다." in page
    assert f'src="/media/{output_name(job)}"' in page


def test_job_detail_own_job_is_shown(alice_client, user, django_capture_on_commit_callbacks):
    job = run_image_job(user, "a cat", django_capture_on_commit_callbacks)

    response = alice_client.get(f"/jobs/{job.public_id}/")

    assert response.status_code == 200
    assert f'src="/media/{output_name(job)}"' in response.content.decode()


def test_job_detail_other_users_job_is_404(
    alice_client, other_user, django_capture_on_commit_callbacks
):
    theirs = run_image_job(other_user, "a dog", django_capture_on_commit_callbacks)

    response = alice_client.get(f"/jobs/{theirs.public_id}/")

    assert response.status_code == 404
    assert output_name(theirs) not in response.content.decode()


# --- media ------------------------------------------------------------------------------------
@pytest.fixture
def alice_file(user, django_capture_on_commit_callbacks):
    """(storage name, bytes) of an image alice generated."""
    job = run_image_job(user, "a cat", django_capture_on_commit_callbacks)
    name = output_name(job)
    with default_storage.open(name, "rb") as fh:
        data = fh.read()
    assert data[:3] == b"\xff\xd8\xff"  # a real JPEG
    return name, data


def body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_media_owner_gets_file(alice_client, alice_file):
    name, data = alice_file

    response = alice_client.get(f"/media/{name}")

    assert response.status_code == 200
    assert body(response) == data
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")


def test_media_other_user_gets_404(client, other_user, alice_file):
    name, data = alice_file
    client.force_login(other_user)

    response = client.get(f"/media/{name}")

    assert response.status_code == 404
    assert data not in body(response)


def test_media_anonymous_never_gets_file(client, alice_file):
    name, data = alice_file

    response = client.get(f"/media/{name}")

    # The view answers 404 to everyone who may not see the file, signed in or not.
    assert response.status_code == 404
    assert data not in body(response)


def test_media_staff_gets_file(client, alice_file):
    """Staff with the support permission (issue 18: is_staff alone is not enough)."""
    from django.contrib.auth.models import Permission

    name, data = alice_file
    staff = get_user_model().objects.create_user("support", password="pw-support-123")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_user_media"))
    client.force_login(staff)

    response = client.get(f"/media/{name}")

    assert response.status_code == 200
    assert body(response) == data


def test_media_path_traversal_is_404(client, user, other_user, alice_file):
    name, data = alice_file
    # bob asks for alice's file through his own prefix: u/<bob>/../<alice>/...
    sneaky = name.replace(f"u/{user.pk}/", f"u/{other_user.pk}/../{user.pk}/", 1)
    assert sneaky != name
    assert default_storage.exists(sneaky)  # the storage would resolve it: the view must not
    client.force_login(other_user)

    response = client.get(f"/media/{sneaky}")

    assert response.status_code == 404
    assert data not in body(response)


def test_media_missing_file_is_404(alice_client, user):
    response = alice_client.get(f"/media/u/{user.pk}/jobs/nothing-here.jpg")

    assert response.status_code == 404
