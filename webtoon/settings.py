"""Settings for webtoon, read from the environment (12-factor, django-environ).

Every variable is documented in README.md with its default. The embedded defaults need
nothing but Python: SQLite in ./data, django-q2's ORM broker, local media, offline backend.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; silently ignored when absent

DATA_DIR = Path(env("WEBTOON_DATA_DIR", default=str(BASE_DIR / "data")))

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-change-me-in-production-3f9a1c7e")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ninja",
    "django_q",
    "webtoon.accounts",
    "webtoon.jobs",
    "webtoon.notifications",
    "characters",
    "scenes",
    "episodes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
else:
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

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webtoon@localhost")

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
# timestamp is further than the leeway from now is refused (replays).
FAL_WEBHOOK_JWKS_URL = env(
    "FAL_WEBHOOK_JWKS_URL", default="https://rest.alpha.fal.ai/.well-known/jwks.json"
)
FAL_WEBHOOK_LEEWAY_SECONDS = env.int("FAL_WEBHOOK_LEEWAY_SECONDS", default=300)

FAL_ENDPOINTS = {
    "kontext": env("FAL_ENDPOINT_KONTEXT", default="fal-ai/flux-pro/kontext"),
    "styled": env("FAL_ENDPOINT_STYLED", default="fal-ai/flux-2/edit"),
    "trainer": env("FAL_ENDPOINT_TRAINER", default="fal-ai/flux-lora-portrait-trainer"),
    "lora": env("FAL_ENDPOINT_LORA", default="fal-ai/flux-lora"),
}
# Hosts a result file may be downloaded from (https only, no redirects).
FAL_FILE_HOSTS = env.list("FAL_FILE_HOSTS", default=["v3.fal.media", "v3b.fal.media", "fal.media"])
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
KRW_PER_USD = env.float("KRW_PER_USD", default=1400)

# --- Abuse limits --------------------------------------------------------------------------
# Every action that pays fal (a cut set, more cuts, a regenerated cut, a training, test images,
# a scene, an episode panel) counts against the owner's rate limit ("N/s|m|h|d", empty = off)
# and a daily spend cap in dollars (estimated cost of the day's jobs, refunds excluded; 0 = off).
# Either refusal is a 429 with a Korean {"detail"} on the API and a message on the page.
RATE_LIMIT_COSTLY = env("RATE_LIMIT_COSTLY", default="30/10m")
DAILY_SPEND_CAP_USD = env.float("DAILY_SPEND_CAP_USD", default=25.0)

# Job engine: how often a runner polls fal, how long one task may run before it hands the
# job back to the queue, and the lease after which a silent job counts as abandoned.
JOB_POLL_INTERVAL = env.float("JOB_POLL_INTERVAL", default=1.0)
JOB_TASK_BUDGET_SECONDS = env.float("JOB_TASK_BUDGET_SECONDS", default=240)
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=60)
JOB_BACKOFF_BASE_SECONDS = env.float("JOB_BACKOFF_BASE_SECONDS", default=2.0)
JOB_BACKOFF_MAX_SECONDS = env.float("JOB_BACKOFF_MAX_SECONDS", default=60.0)
JOB_SUBMIT_CONCURRENCY = env.int("JOB_SUBMIT_CONCURRENCY", default=8)

# --- Demo account (make run) ----------------------------------------------------------------
DEMO_USERNAME = env("DEMO_USERNAME", default="demo")
DEMO_PASSWORD = env("DEMO_PASSWORD", default="webtoon-demo")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
