"""Settings for webtoon, read from the environment (12-factor, django-environ).

Every variable is documented in README.md with its default. The embedded defaults need
nothing but Python: SQLite in ./data, django-q2's ORM broker, local media, offline backend.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; silently ignored when absent

DATA_DIR = Path(env("WEBTOON_DATA_DIR", default=str(BASE_DIR / "data")))

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-change-me-in-production-3f9a1c7e")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "webtoon.views.csrf_failure"  # a Korean page, not Django's English one

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # Failed logins counted in the database per account and per address (issue 18).
    "axes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    # Also makes ninja serve Swagger UI from our static files instead of a CDN (CSP: 'self').
    "ninja",
    "django_q",
    "webtoon.accounts",
    "webtoon.jobs",
    "webtoon.notifications",
    "webtoon.ui",
    "webtoon.prompting",
    "characters",
    "scenes",
    "episodes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "webtoon.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "webtoon.middleware.TooManyRequestsMiddleware",
    # Last: turns a locked-out login (axes' backend) into our Korean page with the wait.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webtoon.urls"
WSGI_APPLICATION = "webtoon.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webtoon.context_processors.backend",
                "webtoon.notifications.context_processors.unread_notifications",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'webtoon.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web server and a worker write at once: WAL lets readers and one writer coexist,
    # IMMEDIATE takes the write lock at BEGIN (no lock upgrade deadlock), and the timeout
    # makes a second writer wait instead of answering "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Persistent connections on both databases (issue 19): on SQLite a connection per request
# cost a connect, the PRAGMAs and, on close, a WAL checkpoint with an fsync (about 5 ms of
# every status poll), and django-q's ORM broker reconnected on every enqueue.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a login while the account or the client address is locked
# out, before the password is even checked (the right password does not get through). Then
# Django's ModelBackend with its per-request user read written once as SQL; Django's own
# last, for sessions signed in before (webtoon/accounts/backends.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "webtoon.accounts.backends.ModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT failed logins within LOGIN_LOCKOUT_MINUTES, for one account (any
# address) or from one address (any account), lock that account or address out for that long
# (a failure during the lockout starts it again); the same on /admin/login/.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "webtoon.accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "webtoon.accounts.throttle.client_ip"
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded (only failures count)
# Trusted proxies in front of the web processes that append to X-Forwarded-For (0: the
# socket's address is the client's). Used by the login and sign-up throttles.
WEBTOON_PROXY_COUNT = env.int("WEBTOON_PROXY_COUNT", default=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18N -----------------------------------------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어")]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Media is never public: /media/<path> goes through an owner-checked view (webtoon.media).
MEDIA_URL = "/media/"

AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    # S3-compatible media (AWS, MinIO, R2 ...). Objects stay private; the media view redirects
    # the owner to a short-lived presigned URL.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads: Django has no max file size; we check it ourselves (MAX_UPLOAD_BYTES).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)

# --- Task queue (django-q2) -----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "webtoon",
    "workers": env.int("Q_WORKERS", default=2),
    # Every task is short (a job runner re-enqueues itself within its budget), so timeout
    # stays far below retry and the ORM broker never redelivers a task that is still running.
    "timeout": 600,
    "retry": 900,
    "max_attempts": 3,
    "ack_failures": False,
    "queue_limit": env.int("Q_WORKERS", default=2),
    "bulk": 1,
    "catch_up": False,
    "save_limit": 1000,
    "recycle": 100,
    "label": "작업 큐",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# With Redis, sessions are read from the cache and written through to the database (every
# page and poll read the session row; issue 19). Not with the per-process cache: a session
# logged out in one worker would live on in the other workers' caches. Without Redis, the
# database store with its per-request read written once as SQL (webtoon/sessions.py).
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db" if REDIS_URL else "webtoon.sessions"
)

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webtoon@localhost")
# Staff who get operational alerts (the site-wide spend cap): comma-separated addresses.
ADMINS = [(a, a) for a in env.list("ADMINS", default=[])]
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Sign-ups must confirm their e-mail address before any paid action. On by default as soon as
# mail really goes out (any backend but the console's).
SIGNUP_REQUIRE_EMAIL_VERIFICATION = env.bool(
    "SIGNUP_REQUIRE_EMAIL_VERIFICATION", default="console" not in EMAIL_BACKEND
)

# --- Image backend (fal.ai or offline) ------------------------------------------------------
FAL_KEY = env("FAL_KEY", default="")
WEBTOON_BACKEND = env("WEBTOON_BACKEND", default="fal" if FAL_KEY else "offline")
if WEBTOON_BACKEND not in ("fal", "offline"):
    raise environ.ImproperlyConfigured("WEBTOON_BACKEND must be 'fal' or 'offline'")
WEBTOON_OFFLINE_TRAINING_SECONDS = env.float("WEBTOON_OFFLINE_TRAINING_SECONDS", default=30)
WEBTOON_OFFLINE_IMAGE_SECONDS = env.float("WEBTOON_OFFLINE_IMAGE_SECONDS", default=1.5)
WEBTOON_OFFLINE_DIR = DATA_DIR / "offline"
# Public base URL of this site, for fal webhooks (empty: poll only).
WEBTOON_PUBLIC_URL = env("WEBTOON_PUBLIC_URL", default="")
# fal signs webhooks with Ed25519; its public keys (JWKS) are cached 24 h. A signature whose
# timestamp is further than the leeway from now is refused (replays). The keys are fetched
# from the first URL that serves them (FAL.md §5: rest.fal.ai now, rest.alpha.fal.ai before);
# the older single-URL FAL_WEBHOOK_JWKS_URL, when set, pins that one URL.
FAL_WEBHOOK_JWKS_URLS = env.list(
    "FAL_WEBHOOK_JWKS_URLS",
    default=[
        "https://rest.fal.ai/.well-known/jwks.json",
        "https://rest.alpha.fal.ai/.well-known/jwks.json",
    ],
)
if env("FAL_WEBHOOK_JWKS_URL", default="") and not env("FAL_WEBHOOK_JWKS_URLS", default=""):
    FAL_WEBHOOK_JWKS_URLS = [env("FAL_WEBHOOK_JWKS_URL")]
FAL_WEBHOOK_LEEWAY_SECONDS = env.int("FAL_WEBHOOK_LEEWAY_SECONDS", default=300)

FAL_ENDPOINTS = {
    "kontext": env("FAL_ENDPOINT_KONTEXT", default="fal-ai/flux-pro/kontext"),
    "styled": env("FAL_ENDPOINT_STYLED", default="fal-ai/flux-2/edit"),
    "trainer": env("FAL_ENDPOINT_TRAINER", default="fal-ai/flux-lora-portrait-trainer"),
    "lora": env("FAL_ENDPOINT_LORA", default="fal-ai/flux-lora"),
    # Repaint one character's face and hair with only its LoRA (issue 16, FAL.md §5).
    "inpaint": env("FAL_ENDPOINT_INPAINT", default="fal-ai/flux-lora/inpainting"),
    # Reference mode (issue 17): a scene drawn from a character's best cuts, no LoRA needed.
    "reference": env("FAL_ENDPOINT_REFERENCE", default="fal-ai/flux-2/edit"),
}
# How many reference images FAL_ENDPOINT_REFERENCE takes at most (flux-2/edit: 4, FAL.md §5).
FAL_REFERENCE_MAX_IMAGES = env.int("FAL_REFERENCE_MAX_IMAGES", default=4)
# Hosts a result file may be downloaded from (https only, no redirects).
FAL_FILE_HOSTS = env.list("FAL_FILE_HOSTS", default=["v3.fal.media", "v3b.fal.media", "fal.media"])
# fal's own buckets on shared hosts, allowed by host *and* path prefix (trainer results often
# come from storage.googleapis.com/fal-flux-lora/...); never the whole shared host.
FAL_FILE_PREFIXES = env.list(
    "FAL_FILE_PREFIXES",
    default=["storage.googleapis.com/fal-flux-lora/", "storage.googleapis.com/falserverless/"],
)
# Files we host on fal (photo, training ZIP, LoRA) are uploaded again before reuse once they
# are this old (fal keeps media "at least 7 days").
FAL_UPLOAD_MAX_AGE_SECONDS = env.int("FAL_UPLOAD_MAX_AGE_SECONDS", default=6 * 24 * 3600)
# Requests in flight at fal at once for the whole product (fal runs 2 at a time on a new
# account, up to 40 later, and queues the rest first in, first out). 0 = unlimited. Above it,
# work waits in our own queue, shared round robin by user, oldest first.
FAL_ACCOUNT_CONCURRENCY = env.int("FAL_ACCOUNT_CONCURRENCY", default=0)
# While fal refuses the account (401/403 locked), one request is let through this often to see
# whether it works again.
FAL_ACCOUNT_PROBE_SECONDS = env.int("FAL_ACCOUNT_PROBE_SECONDS", default=60)
# A request whose submit answer was lost may be running at fal: it counts against the slots
# for this long at most (a submit that never reached fal must not hold one until its deadline).
FAL_ORPHAN_SLOT_SECONDS = env.int("FAL_ORPHAN_SLOT_SECONDS", default=120)
# Prices per endpoint: "<amount>/mp" (per megapixel of each output image, 1024² = 1 MP),
# "/image", "/run" or "/step". FAL_PRICES="fal-ai/flux-lora=0.035/mp,fal-ai/x=0.05/image"
# adds or replaces entries. An endpoint not listed costs its kind's COST_PER_* below.
FAL_PRICES = {
    "fal-ai/flux-lora": "0.035/mp",
    "fal-ai/flux-lora/inpainting": "0.035/mp",
    "fal-ai/flux-pro/kontext": "0.04/image",
    **env.dict("FAL_PRICES", default={}),
}
MAX_DOWNLOAD_BYTES = env.int("MAX_DOWNLOAD_BYTES", default=50 * 1024 * 1024)
MAX_LORA_BYTES = env.int("MAX_LORA_BYTES", default=1024 * 1024 * 1024)

# --- Product defaults (SPEC §12) ------------------------------------------------------------
CHARACTER_TRAINING_STEPS = env.int("CHARACTER_TRAINING_STEPS", default=1500)
CHARACTER_TRAINING_LEARNING_RATE = env.float("CHARACTER_TRAINING_LEARNING_RATE", default=1e-4)
CHARACTER_TRAINING_RESOLUTION = env.int("CHARACTER_TRAINING_RESOLUTION", default=1024)
CHARACTER_TRAINING_CREATE_MASKS = env.bool("CHARACTER_TRAINING_CREATE_MASKS", default=True)
GENERATION_CUTS_COUNT = env.int("GENERATION_CUTS_COUNT", default=24)
GENERATION_ADDITIONAL_COUNT = env.int("GENERATION_ADDITIONAL_COUNT", default=4)
MIN_SELECTED_CUTS = env.int("MIN_SELECTED_CUTS", default=15)
RECOMMENDED_SELECTED_CUTS = env.int("RECOMMENDED_SELECTED_CUTS", default=20)
LORA_SCALE_DEFAULT = env.float("LORA_SCALE_DEFAULT", default=0.8)
LORA_SCALE_MIN = env.float("LORA_SCALE_MIN", default=0.1)
LORA_SCALE_MAX = env.float("LORA_SCALE_MAX", default=1.5)
INFERENCE_STEPS = env.int("INFERENCE_STEPS", default=28)
MAX_CONCURRENT_TRAINING = env.int("MAX_CONCURRENT_TRAINING", default=2)
TRAINING_TIMEOUT_SECONDS = env.int("TRAINING_TIMEOUT_SECONDS", default=3600)
TRAINING_MAX_RETRIES = env.int("TRAINING_MAX_RETRIES", default=2)
GENERATION_TIMEOUT_SECONDS = env.int("GENERATION_TIMEOUT_SECONDS", default=600)
GENERATION_MAX_ATTEMPTS = env.int("GENERATION_MAX_ATTEMPTS", default=3)
SOFT_DELETE_DAYS = env.int("SOFT_DELETE_DAYS", default=30)
LOCAL_BACKUP_PATH = Path(env("LOCAL_BACKUP_PATH", default=str(DATA_DIR / "characters")))
AUTO_BACKUP_ENABLED = env.bool("AUTO_BACKUP_ENABLED", default=True)
COST_PER_IMAGE_GENERATION = env.float("COST_PER_IMAGE_GENERATION", default=0.02)
COST_PER_LORA_TRAINING = env.float("COST_PER_LORA_TRAINING", default=2.00)
COST_PER_LORA_INFERENCE = env.float("COST_PER_LORA_INFERENCE", default=0.03)
# Korean scene text → English image prompt through fal-ai/any-llm (issue 15, FAL.md §5):
# charged per token; a short phrase costs a fraction of a cent. Cached per text.
PROMPT_LLM_MODEL = env("PROMPT_LLM_MODEL", default="google/gemini-flash-1.5")
PROMPT_LLM_TIMEOUT_SECONDS = env.float("PROMPT_LLM_TIMEOUT_SECONDS", default=8.0)
COST_PER_LLM_PROMPT = env.float("COST_PER_LLM_PROMPT", default=0.001)
# One fal-ai/flux-lora/inpainting call (a two-character scene pays one per character when
# its identities are separated). Not confirmed on fal: FAL.md prices flux-lora per megapixel.
COST_PER_LORA_INPAINT = env.float("COST_PER_LORA_INPAINT", default=0.03)
# The scale sweep after every training (issue 16): each scale x each prompt at `square`,
# the same seed per prompt so only the strength changes. Empty scales = no sweep. Prompts
# are separated by "|" (they contain commas); the trigger word is put in front.
SCALE_SWEEP_SCALES = [
    float(v) for v in env.list("SCALE_SWEEP_SCALES", default=["0.6", "0.8", "1.0"]) if v.strip()
]
SCALE_SWEEP_PROMPTS = [
    p.strip()
    for p in env(
        "SCALE_SWEEP_PROMPTS",
        default="upper body, smiling, looking at viewer, office background"
        "|three-quarter view, explaining something, cafe background",
    ).split("|")
    if p.strip()
]
KRW_PER_USD = env.float("KRW_PER_USD", default=1400)

# --- Abuse limits --------------------------------------------------------------------------
# Every action that pays fal (a cut set, more cuts, a regenerated cut, a training, test images,
# a scene, an episode panel, a retry) counts against the owner's rate limit ("N/<k><s|m|h|d>",
# e.g. "30/10m" = 30 per 10 minutes; empty = off) and a daily spend cap in dollars (estimated
# cost of the jobs created that local day, TIME_ZONE, refunds excluded; 0 = off). Both are
# counted from the database (webtoon/jobs/limits.py); follow-ups the system starts itself
# (test images after a training) are never refused but their cost counts.
# Either refusal is a 429 with a Korean {"detail"} on the API and a message on the page.
RATE_LIMIT_COSTLY = env("RATE_LIMIT_COSTLY", default="30/10m")
DAILY_SPEND_CAP_USD = env.float("DAILY_SPEND_CAP_USD", default=25.0)
# Every user together, per local day (0 = off): over it, paid actions are a 429 for everyone
# and staff are alerted (admin banner, one e-mail to ADMINS per day).
DAILY_SITE_SPEND_CAP_USD = env.float("DAILY_SITE_SPEND_CAP_USD", default=200.0)
# Free but heavy actions, per user and per kind, counted in the database (webtoon/accounts/
# throttle.py); sign-ups per client address. Same "N/<k><s|m|h|d>" form; empty = off.
RATE_LIMIT_RESTORE = env("RATE_LIMIT_RESTORE", default="10/1h")
RATE_LIMIT_UPLOADS = env("RATE_LIMIT_UPLOADS", default="60/10m")
RATE_LIMIT_EXPORTS = env("RATE_LIMIT_EXPORTS", default="20/10m")
RATE_LIMIT_PREVIEWS = env("RATE_LIMIT_PREVIEWS", default="300/10m")
SIGNUP_RATE_LIMIT = env("SIGNUP_RATE_LIMIT", default="5/1h")

# Job engine: how often a runner polls fal, how long one task may run before it hands the
# job back to the queue, and the lease after which a silent job counts as abandoned.
JOB_POLL_INTERVAL = env.float("JOB_POLL_INTERVAL", default=1.0)
JOB_TASK_BUDGET_SECONDS = env.float("JOB_TASK_BUDGET_SECONDS", default=240)
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=60)
JOB_BACKOFF_BASE_SECONDS = env.float("JOB_BACKOFF_BASE_SECONDS", default=2.0)
JOB_BACKOFF_MAX_SECONDS = env.float("JOB_BACKOFF_MAX_SECONDS", default=60.0)
JOB_SUBMIT_CONCURRENCY = env.int("JOB_SUBMIT_CONCURRENCY", default=8)
# A status poll of one job (training-status) reuses the rows it read for this long: many
# watchers of one job cost one set of reads per second (issue 19); 0 = read every time.
STATUS_CACHE_SECONDS = env.float("STATUS_CACHE_SECONDS", default=1.0)

# --- Demo account (make run) ----------------------------------------------------------------
DEMO_USERNAME = env("DEMO_USERNAME", default="demo")
DEMO_PASSWORD = env("DEMO_PASSWORD", default="webtoon-demo")

# --- Security -------------------------------------------------------------------------------
# `manage.py check --deploy` is clean with DEBUG=0, a long SECRET_KEY, ALLOWED_HOSTS and
# WEBTOON_HTTPS=1 (README "Production settings"). WEBTOON_HTTPS stays off by default so that
# `make run` keeps working over plain http on 127.0.0.1.
WEBTOON_HTTPS = env.bool("WEBTOON_HTTPS", default=False)
if WEBTOON_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# Behind a TLS-terminating proxy: the header it sets on https requests (e.g. X-Forwarded-Proto,
# value "https"). Only set it when the proxy always overwrites that header from clients, or
# anyone can claim https; without it, SECURE_SSL_REDIRECT behind such a proxy loops forever.
_proxy_ssl_header = env("WEBTOON_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: htmx sends the token from the page (hx-headers on <body>).
CSRF_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp), in development too. No inline script, no eval (htmx is
# told allowEval:false and our behaviour lives in static/js), and no inline style either: no
# template has a style attribute or <style> element (progress is a <progress> element, the
# episode editor sets its geometry from data-* attributes through the CSSOM, which CSP allows)
# and htmx's indicator <style> is switched off (includeIndicatorStyles:false, CSS in app.css).
# Media on S3 is served by redirect to a presigned URL, so images may come from the bucket.
_img_src = ["'self'", "data:", "blob:"]
if AWS_STORAGE_BUCKET_NAME:
    _endpoint = env("AWS_S3_ENDPOINT_URL", default="")
    if _endpoint:
        _parts = urlsplit(_endpoint)
        # Path-style (endpoint/bucket/key) and virtual-hosted (bucket.endpoint/key) URLs.
        _img_src += [
            f"{_parts.scheme}://{_parts.netloc}",
            f"{_parts.scheme}://{AWS_STORAGE_BUCKET_NAME}.{_parts.netloc}",
        ]
    else:
        _region = env("AWS_S3_REGION_NAME", default="")
        _img_src += [f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com"]
        if _region:
            _img_src += [f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{_region}.amazonaws.com"]
_img_src += env.list("CSP_EXTRA_IMG_SRC", default=[])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": _img_src,
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# Every handler carries the redaction filter (webtoon.logsafety): no FAL_KEY, Authorization
# header value or API token reaches a log line, whichever library wrote it. Django's own
# "django" handlers (console in DEBUG, mail_admins) are replaced by the filtered root handler.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "webtoon.logsafety.RedactSecrets"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
