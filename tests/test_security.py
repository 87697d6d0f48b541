"""Security settings: `check --deploy`, the Content-Security-Policy header, and secrets (the
fal key, API tokens) kept out of logs, stored messages, pages, the admin and the API."""

import logging
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import Client
from django.utils.module_loading import import_string

from webtoon import settings as production_settings
from webtoon.accounts.models import ApiToken
from webtoon.accounts.services import revoke_api_token
from webtoon.jobs.models import CallAttempt, FalAccount, Job, JobState, RemoteCall
from webtoon.logsafety import REDACTED, RedactSecrets, redact

ROOT = Path(__file__).resolve().parent.parent
RAW_TOKEN = re.compile(r"wt_[A-Za-z0-9_-]{40,}")
# A fal key is "<key id>:<key secret>".
FAL_SECRET = "sentinel-secret-9f8e7d6c5b4a"
FAL_KEY = f"sentinel-key-id:{FAL_SECRET}"


# --- check --deploy ---------------------------------------------------------------------------
def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The documented production environment (README "Production settings")."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "WEBTOON_", "SECURE_", "AWS_")) and k != "DEBUG"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="webtoon.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="webtoon.example.com",
        CSRF_TRUSTED_ORIGINS="https://webtoon.example.com",
        WEBTOON_HTTPS="1",
        WEBTOON_PROXY_SSL_HEADER="X-Forwarded-Proto",
        WEBTOON_DATA_DIR=str(tmp_path),
    )
    env.update(extra)
    return env


CHECK_DEPLOY = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_the_production_env(tmp_path):
    done = run(CHECK_DEPLOY, production_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_warns_without_https(tmp_path):
    env = production_env(tmp_path)
    del env["WEBTOON_HTTPS"]
    done = run(CHECK_DEPLOY, env)
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


PROBE_IMG_SRC = textwrap.dedent(
    """
    import django, json
    from urllib.parse import urlsplit
    django.setup()
    from django.conf import settings
    from django.core.files.storage import default_storage
    url = urlsplit(default_storage.url("u/1/photos/a.jpg"))  # presigned, computed locally
    print(json.dumps({"origin": f"{url.scheme}://{url.netloc}",
                      "img_src": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"]}))
    """
)


@pytest.mark.parametrize(
    "storage_env",
    [
        {"AWS_S3_ENDPOINT_URL": "https://s3.example.com"},
        {"AWS_S3_REGION_NAME": "ap-northeast-2"},
    ],
    ids=["custom-endpoint", "aws"],
)
def test_img_src_allows_the_presigned_s3_urls_the_media_view_redirects_to(tmp_path, storage_env):
    import json

    env = production_env(
        tmp_path,
        AWS_STORAGE_BUCKET_NAME="webtoon-media",
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="example-secret",
        **storage_env,
    )
    done = run(["-c", PROBE_IMG_SRC], env)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["img_src"][:3] == ["'self'", "data:", "blob:"]
    assert probe["origin"] in probe["img_src"]


# --- Content-Security-Policy ------------------------------------------------------------------
EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:", "blob:"},
    "connect-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'self'"},
    "object-src": {"'none'"},
}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/characters/", "/admin/login/", "/api/docs"])
def test_pages_carry_the_content_security_policy(alice_client, url):
    response = alice_client.get(url)
    assert response.status_code == 200
    assert parse_csp(response["Content-Security-Policy"]) == EXPECTED_CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_htmx_is_configured_for_the_policy(alice_client):
    html = alice_client.get("/characters/").content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert config is not None
    assert '"includeIndicatorStyles": false' in config[1]
    assert '"allowEval": false' in config[1]
    assert '"attributesToSettle": ["class", "width", "height"]' in config[1]  # no "style"


@pytest.mark.django_db
def test_api_docs_are_served_from_our_static_files(alice_client):
    html = alice_client.get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


INLINE = {
    "style attribute": re.compile(r"\sstyle\s*="),
    "<style> element": re.compile(r"<style[\s>]"),
    "hx-on attribute": re.compile(r"\shx-on"),
    "inline event handler": re.compile(r"\son[a-z]+\s*="),
    "inline <script>": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>"),
    "js: value": re.compile(r"""hx-vals\s*=\s*['"]\s*js:"""),
}


def test_templates_have_nothing_inline_the_policy_would_block():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        name = path.relative_to(ROOT)
        found += [f"{name}: {what}" for what, rx in INLINE.items() if rx.search(text)]
    assert found == []


# --- secrets in logs --------------------------------------------------------------------------
def test_every_production_log_handler_redacts():
    config = production_settings.LOGGING
    filters = {name: spec["()"] for name, spec in config["filters"].items()}
    assert config["handlers"]
    for handler in config["handlers"].values():
        assert any(filters[f] == "webtoon.logsafety.RedactSecrets" for f in handler["filters"])
    assert config["loggers"]["django"]["handlers"] == []  # Django's unfiltered ones are gone


def production_filter() -> logging.Filter:
    return import_string(production_settings.LOGGING["filters"]["redact_secrets"]["()"])()


def test_redact_scrubs_the_key_headers_and_api_tokens(settings):
    settings.FAL_KEY = FAL_KEY
    token = "wt_" + secrets.token_urlsafe(32)
    text = redact(
        f"key={FAL_KEY} secret={FAL_SECRET} {{'Authorization': 'Key {FAL_KEY}'}} "
        f"authorization: Bearer {token} token={token} Bearer abcdefghijklmnopqrstuvwxyz"
    )
    for secret in (FAL_SECRET, token, "abcdefghijklmnopqrstuvwxyz"):
        assert secret not in text
    assert "'Authorization': 'Key [REDACTED]'" in text
    assert f"token=wt_{REDACTED}" in text
    assert redact("fal 422: prompt is required") == "fal 422: prompt is required"


def test_log_filter_scrubs_message_args_and_exception(settings):
    settings.FAL_KEY = FAL_KEY
    token = "wt_" + secrets.token_urlsafe(32)
    try:
        raise RuntimeError(f"fal said: Authorization: Key {FAL_KEY}")
    except RuntimeError:
        import sys as _sys

        exc_info = _sys.exc_info()
    record = logging.LogRecord(
        "fal_client", logging.DEBUG, __file__, 1, "retrying %s with %s", (FAL_KEY, token), exc_info
    )
    assert RedactSecrets().filter(record) is True
    text = logging.Formatter().format(record)
    assert FAL_SECRET not in text and token not in text
    assert "RuntimeError: fal said: Authorization: Key [REDACTED]" in text


def test_production_logging_config_redacts_in_a_real_process(tmp_path):
    token = "wt_" + secrets.token_urlsafe(32)
    code = textwrap.dedent(
        f"""
        import logging, django
        django.setup()
        logging.getLogger("fal_client.client").warning("Retrying due to Key {FAL_KEY}")
        logging.getLogger("django.request").warning("Unauthorized: Bearer {token}")
        try:
            raise ValueError("{FAL_SECRET}")
        except ValueError:
            logging.getLogger("webtoon.jobs").exception("job failed")
        """
    )
    done = run(["-c", code], production_env(tmp_path, FAL_KEY=FAL_KEY))
    assert done.returncode == 0, done.stderr
    assert FAL_SECRET not in done.stderr and token not in done.stderr
    assert done.stderr.count(REDACTED) == 3
    assert "ValueError: [REDACTED]" in done.stderr


# --- a fal error that echoes our key ----------------------------------------------------------
@pytest.fixture
def leaky_fal(fal, settings, caplog):
    """fal answers with error bodies that echo the key and our Authorization header; every
    log record (httpx and fal-client included) is captured at DEBUG through the production
    filter, as the production handlers do."""
    settings.FAL_KEY = FAL_KEY
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(production_filter())
    echo = {"Authorization": f"Key {FAL_KEY}", "User-Agent": "fal-client"}
    return fal, echo


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert FAL_SECRET not in text
        assert "sentinel-key-id:" not in text


@pytest.mark.django_db
def test_fal_errors_that_echo_the_key_never_leak(
    leaky_fal, alice_client, admin_client, caplog, django_capture_on_commit_callbacks
):
    fal, echo = leaky_fal
    # Job 1: fal-client's own retry on 429 (it logs the reply), then 500s until our attempts
    # run out. Job 2: fal refuses the key (401): the account is paused (circuit breaker) and
    # the job waits; the refusal is kept for support.
    fal.fail("submit", status=429, times=2, body={"detail": f"slow down, Key {FAL_KEY}"})
    fal.fail("submit", status=500, times=10, body={"detail": [{"msg": FAL_SECRET, "h": echo}]},
             match=lambda a: "dog" in a.get("prompt", ""))
    fal.fail("submit", status=401, body={"detail": f"Invalid key {FAL_KEY}; headers: {echo}"},
             match=lambda a: "cat" in a.get("prompt", ""))
    jobs = []
    for prompt in ("a dog on a bike", "a cat at a desk"):
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.post(
                "/api/jobs/image", {"prompt": prompt}, content_type="application/json"
            )
        assert response.status_code == 201
        jobs.append(Job.objects.get(public_id=response.json()["id"]))

    for job in jobs:
        job.refresh_from_db()
    assert jobs[0].state == JobState.FAILED
    assert jobs[0].error_message.startswith("fal 500:")
    assert jobs[1].state == JobState.RUNNING  # waits for the account, not failed
    refusal = FalAccount.objects.get(pk=1).reason
    assert refusal.startswith("fal 401: Invalid key [REDACTED]")
    attempt = CallAttempt.objects.get(call__job=jobs[1])
    assert attempt.error_message.startswith("fal 401: Invalid key [REDACTED]")
    assert "Retrying request" in caplog.text  # fal-client did log the 429 reply

    stored = [j.error_message for j in Job.objects.all()]
    stored += [c.error_message + c.last_log for c in RemoteCall.objects.all()]
    stored += [a.error_message for a in CallAttempt.objects.all()]
    stored += [refusal]
    assert len(stored) >= 6
    pages = [alice_client.get("/jobs/").content.decode()]
    for job in jobs:
        pages.append(alice_client.get(f"/api/jobs/{job.public_id}").content.decode())
        pages.append(admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode())
        for call in job.calls.all():
            pages.append(
                admin_client.get(f"/admin/jobs/remotecall/{call.pk}/change/").content.decode()
            )
    pages.append(admin_client.get("/admin/jobs/job/").content.decode())
    pages.append(admin_client.get("/admin/jobs/falaccount/1/change/").content.decode())
    assert "fal 500:" in pages[1]  # the API's per-output error
    assert "fal 401: Invalid key [REDACTED]" in pages[-1]  # support still sees what fal said
    assert 'data-testid="fal-account-paused"' in pages[-2]  # and the banner on every page
    _assert_no_secret(caplog.text, *stored, *pages)


# --- API tokens -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_api_token_is_shown_once_and_never_logged(alice_client, admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(production_filter())

    created = alice_client.post("/accounts/profile/", {"name": "script"}).content.decode()
    tokens = RAW_TOKEN.findall(created)
    assert len(tokens) == 1
    raw = tokens[0]
    token = ApiToken.objects.get()

    api = Client()
    assert api.get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    wrong = "wt_" + secrets.token_urlsafe(32)
    assert api.get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 401
    revoke_api_token(token)
    assert api.get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401

    later = [
        alice_client.get("/accounts/profile/").content.decode(),
        admin_client.get("/admin/accounts/apitoken/").content.decode(),
        admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode(),
        caplog.text,
    ]
    assert token.prefix in later[0] and token.prefix in later[1]
    for text in later:
        assert raw not in text and wrong not in text
        assert RAW_TOKEN.search(text) is None
