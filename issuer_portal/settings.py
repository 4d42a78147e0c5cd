"""Settings, driven by environment variables (SPEC §5.7).

Nothing configured: SQLite, tasks run in-process, SMS and push to the console.
Production names PostgreSQL (DATABASE_URL), a broker (CELERY_BROKER_URL) and real keys.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)

# Development-only values: usable when DEBUG is on, refused otherwise (checked below).
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0000000000"
# kid:base64(32 bytes). The first key encrypts; every listed key can decrypt (rotation).
DEV_DATA_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHktZGF0YS1lbmNyeXB0aW9uLWtleS0zMmI="
DEV_PAN_FINGERPRINT_KEY = "dev-only-pan-fingerprint-key"
DEV_AUTHENTICATION_VALUE_KEYS = "devav1:ZGV2LW9ubHktYXV0aGVudGljYXRpb24tdmFsdWUta2V5IQ=="

SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
DATA_ENCRYPTION_KEYS = os.environ.get("DATA_ENCRYPTION_KEYS", DEV_DATA_ENCRYPTION_KEYS)
# Keyed fingerprint of the PAN, used for look-up and duplicate detection. Separate from the
# encryption keys so that rotating those never changes a fingerprint.
PAN_FINGERPRINT_KEY = os.environ.get("PAN_FINGERPRINT_KEY", DEV_PAN_FINGERPRINT_KEY)
# Master keys of the authentication value MAC ("kid:base64,..."; the first signs, all verify).
AUTHENTICATION_VALUE_KEYS = os.environ.get("AUTHENTICATION_VALUE_KEYS", DEV_AUTHENTICATION_VALUE_KEYS)

if not DEBUG:
    _dev = [
        name
        for name, value, dev in (
            ("SECRET_KEY", SECRET_KEY, DEV_SECRET_KEY),
            ("DATA_ENCRYPTION_KEYS", DATA_ENCRYPTION_KEYS, DEV_DATA_ENCRYPTION_KEYS),
            ("PAN_FINGERPRINT_KEY", PAN_FINGERPRINT_KEY, DEV_PAN_FINGERPRINT_KEY),
            ("AUTHENTICATION_VALUE_KEYS", AUTHENTICATION_VALUE_KEYS, DEV_AUTHENTICATION_VALUE_KEYS),
        )
        if value == dev
    ]
    if _dev:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off on development keys: set " + ", ".join(_dev)
        )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{os.environ.get('PORT') or 8000}").rstrip("/")
# acsReferenceNumber: assigned to the ACS by EMVCo on certification.
ACS_REFERENCE_NUMBER = os.environ.get("ACS_REFERENCE_NUMBER", "3DS_LOA_ACS_ISSUERPORTAL_020200_00001")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", PUBLIC_BASE_URL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "django_celery_beat",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.issuers",
    "apps.cards",
    "apps.audit",
    "apps.otp",
    "apps.delivery",
    "apps.sms",
    "apps.webhooks",
    "apps.threeds",
    "apps.devices",
    "apps.push",
    "apps.oob",
    "apps.analyst",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.JsonErrorsMiddleware",
    "apps.core.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.core.middleware.StaffLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: refuses a locked-out staff login (429, the lockout page).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "issuer_portal.urls"
WSGI_APPLICATION = "issuer_portal.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# PostgreSQL: bind parameters on the server (Django's `server_side_binding`) and let psycopg
# prepare a statement once per connection after it has run `prepare_threshold` times: parsed and
# planned once instead of at every call (the AReq's card read plans in ~0.5 ms and runs in 0.1).
# Django connects with prepare_threshold=None (never prepare) unless OPTIONS names one, so both
# are set here. Off by default: a pooler in transaction mode that does not keep prepared
# statements per client (PgBouncer before 1.21, or without max_prepared_statements) would hand
# them to the wrong server connection.
DB_SERVER_SIDE_BINDING = envbool("DB_SERVER_SIDE_BINDING", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_SERVER_SIDE_BINDING:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=envint("DB_PREPARE_THRESHOLD", 5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default under a handful of parallel requests. IMMEDIATE: a transaction takes
    # the write lock when it begins, so two readers never deadlock upgrading to writers (SQLite
    # answers that with "database is locked" at once, whatever the timeout). The timeout: wait
    # that long for the lock instead of failing. WAL: readers outside a transaction never wait
    # for the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE", timeout=20, init_command="PRAGMA journal_mode=WAL;"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
# Our own catalogs live beside each app (apps/<app>/locale); this one holds the project templates'.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Plain names, no manifest: pages work without a collectstatic step; WhiteNoise serves them.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the app directories when collectstatic has not run (dev, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Security headers. Pages default to no framing; the challenge page opts in for its own route.
# Content-Security-Policy: apps.core.middleware.ContentSecurityPolicyMiddleware, per path.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG and PUBLIC_BASE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# TLS ends at the proxy. With an https PUBLIC_BASE_URL (and DEBUG off) the service trusts the
# proxy's X-Forwarded-Proto — the proxy must set it and drop any the client sent —, redirects
# plain http to https and sends HSTS (one year). Each can be set on its own.
_PUBLIC_HTTPS = PUBLIC_BASE_URL.startswith("https://") and not DEBUG
if envbool("SECURE_PROXY_SSL_HEADER", _PUBLIC_HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _PUBLIC_HTTPS)
# Probes call the process directly, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if _PUBLIC_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole domain in browsers for good: its owner's decision, off unless set
# (check --deploy's reminder about it, security.W021, is silenced only while it is off).
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600)

# Bodies of the machine APIs are small JSON documents; anything larger is refused with 413.
API_MAX_BODY_BYTES = envint("API_MAX_BODY_BYTES", 64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.openapi.ErrorResponsesAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": None,
}

# ---------------------------------------------------------------- throttling (SPEC §4)
# Proxies in front of the service that append the client's address to X-Forwarded-For (0: the
# connecting address is the client's). Both the API throttles and the staff lockout use it.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
# The throttles' counters: Redis when CACHE_URL names one (shared by every process), else this
# process's memory. If the cache is down the API throttles let requests through and log it.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "issuer_portal"),
            # A cache that does not answer must not hold a request for long.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "issuer-portal"}}
# Wrong API keys, device tokens and enrollment tokens per client address ("20/min": past 20 in
# any 60 s, 429 with Retry-After); requests per API key and per device.
FAILED_CREDENTIALS_RATE = os.environ.get("FAILED_CREDENTIALS_RATE", "20/min")
API_KEY_RATE = os.environ.get("API_KEY_RATE", "3000/min")
DEVICE_RATE = os.environ.get("DEVICE_RATE", "300/min")
# Staff logins (admin and analyst workspace share the admin's login page): django-axes, per user
# name and address; past the limit the login is refused (429, Retry-After, a page that says so)
# until the cool-off ends, even with the right password. Attempts are kept in the database.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("STAFF_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("STAFF_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.core.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
# Masked in the attempts axes keeps (the password always is).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
# axes' own admin lets staff delete attempts (an unaudited unlock); apps/accounts/admin.py shows
# them read-only instead, and locks are lifted with `manage.py axes_reset_username`.
AXES_ENABLE_ADMIN = False

SPECTACULAR_SETTINGS = {
    "TITLE": "Issuer 3-D Secure back office API",
    "DESCRIPTION": (
        "Issuer API (`/api/v1/`): enrollment of cardholders, phones, cards and card products. "
        "Authenticate with `Authorization: Bearer <api key>`. Every POST accepts an "
        "`Idempotency-Key` header. Every error has the `Error` body; a query parameter an "
        "operation does not take is a 400, never ignored. "
        "SDK API (`/sdk/v1/`): the issuer app, `Authorization: Device <device token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# Celery. No broker named: tasks run in-process, after the transaction commits.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Separate queues so a webhook backlog never delays an SMS, and timeouts are never starved.
CELERY_TASK_ROUTES = {
    "sms.*": {"queue": "sms"},
    "webhooks.*": {"queue": "webhooks"},
    "timeouts.*": {"queue": "timeouts"},
    "push.*": {"queue": "push"},
    "rreq.*": {"queue": "rreq"},
    # The delivery sweep beside the challenge timeouts: short, frequent, never behind a backlog.
    "delivery.*": {"queue": "timeouts"},
}
# Redis redelivers an unacknowledged task after this long; every retry delay stays below it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A broker that accepts the connection but never answers (hung, half-open behind a load
    # balancer) would otherwise hold a wake-up (and the cardholder's request) for minutes; with
    # these the publish fails in seconds and the delivery is sent in process. The read timeout
    # stays above the worker's BRPOP poll (1 s), so an idle worker is not mistaken for a dead link.
    "socket_connect_timeout": envint("CELERY_BROKER_CONNECT_TIMEOUT", 2),
    "socket_timeout": envint("CELERY_BROKER_SOCKET_TIMEOUT", 3),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep Django's LOGGING (and its scrubbing filter) in workers instead of Celery's own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Scheduled work (synced into django-celery-beat's tables, editable in admin).
CELERY_BEAT_SCHEDULE = {
    "otp-expire-codes": {"task": "timeouts.otp_expire_codes", "schedule": 15.0},
    # First-CReq (30 s) and whole-challenge (600 s) deadlines: checked every 5 s.
    "challenge-timeouts": {"task": "timeouts.challenges", "schedule": 5.0},
    # Every outbound channel (SMS, push, webhooks, RReq): wakes deliveries whose wake-up was lost
    # or whose worker died (lease lapsed). apps.delivery.engine.
    "delivery-sweep": {"task": "delivery.sweep", "schedule": float(os.environ.get("DELIVERY_SWEEP_SECONDS", "3"))},
    # Wipes SMS bodies past their retention.
    "sms-maintenance": {"task": "sms.maintenance", "schedule": 300.0},
    "webhooks-wipe-payloads": {"task": "webhooks.wipe_payloads", "schedule": 3600.0},
    "analyst-export-sweep": {"task": "analyst.export_sweep", "schedule": 30.0},
}
# Celery's Django fixup closes the DB connection around every task unless told to reuse it.
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000)

# Analysts' background CSV exports: a private directory, never served as static or media files.
ANALYST_EXPORT_DIR = os.environ.get("ANALYST_EXPORT_DIR", str(BASE_DIR / "var" / "exports"))
# Exports with fewer rows than this stream at once (well inside gunicorn's 30 s; docs/BENCHMARKS.md).
ANALYST_STREAM_MAX_ROWS = envint("ANALYST_STREAM_MAX_ROWS", 50_000)

SMS_BACKEND = os.environ.get("SMS_BACKEND", "console")
SMS_FILE_PATH = os.environ.get("SMS_FILE_PATH", str(BASE_DIR / "var" / "sms.jsonl"))
PUSH_BACKEND = os.environ.get("PUSH_BACKEND", "console")
PUSH_FILE_PATH = os.environ.get("PUSH_FILE_PATH", str(BASE_DIR / "var" / "push.jsonl"))
PUSH_MAX_TRIES = envint("PUSH_MAX_TRIES", 5)
# Push-bombing protection: more pushes than this to one device in any 60 s are refused.
PUSH_MAX_PER_DEVICE_PER_MINUTE = envint("PUSH_MAX_PER_DEVICE_PER_MINUTE", 3)
# FCM HTTP v1 (PUSH_BACKEND=fcm): a Google service-account JSON key file; the project is the
# file's project_id unless FCM_PROJECT_ID names another. The two URLs point at test doubles.
FCM_CREDENTIALS_FILE = os.environ.get("FCM_CREDENTIALS_FILE", "")
FCM_PROJECT_ID = os.environ.get("FCM_PROJECT_ID", "")
FCM_TOKEN_URI = os.environ.get("FCM_TOKEN_URI", "")
FCM_API_BASE_URL = os.environ.get("FCM_API_BASE_URL", "https://fcm.googleapis.com")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = os.environ.get("TWILIO_FROM", "")
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "")
# Optional second provider, tried after the primary gives up (e.g. another Twilio account).
SMS_FALLBACK_BACKEND = os.environ.get("SMS_FALLBACK_BACKEND", "")
TWILIO_FALLBACK_ACCOUNT_SID = os.environ.get("TWILIO_FALLBACK_ACCOUNT_SID", "")
TWILIO_FALLBACK_AUTH_TOKEN = os.environ.get("TWILIO_FALLBACK_AUTH_TOKEN", "")
TWILIO_FALLBACK_FROM = os.environ.get("TWILIO_FALLBACK_FROM", "")
TWILIO_FALLBACK_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_FALLBACK_MESSAGING_SERVICE_SID", "")
# Retry schedule of outbound work (SMS, webhooks): exponential backoff with jitter, bounded.
OUTBOUND_MAX_TRIES = envint("OUTBOUND_MAX_TRIES", 6)
OUTBOUND_BACKOFF_BASE_SECONDS = float(os.environ.get("OUTBOUND_BACKOFF_BASE_SECONDS", "2"))
OUTBOUND_BACKOFF_MAX_SECONDS = float(os.environ.get("OUTBOUND_BACKOFF_MAX_SECONDS", "300"))
OUTBOUND_HTTP_TIMEOUT_SECONDS = float(os.environ.get("OUTBOUND_HTTP_TIMEOUT_SECONDS", "5"))
# The delivery sweep wakes a pending delivery only this long after it was due, so that a wake-up
# on its way is not doubled (a doubled one would be harmless, only wasted).
DELIVERY_SWEEP_GRACE_SECONDS = float(os.environ.get("DELIVERY_SWEEP_GRACE_SECONDS", "2"))
# Trust at the edges (SPEC §4, apps.core.outbound_guard). The DS endpoints an AReq's dsURL may
# name: URL prefixes, comma-separated, a port of `*` for any port. Empty refuses every AReq
# (Erro 303; `check --deploy` says so); development defaults to the local simulator's address.
DS_URL_ALLOWLIST = envlist("DS_URL_ALLOWLIST", "http://127.0.0.1:*/,http://localhost:*/" if DEBUG else "")
# Outbound HTTP (webhooks, RReq, Twilio, FCM) to loopback, private or link-local addresses:
# development and tests only.
OUTBOUND_ALLOW_PRIVATE = envbool("OUTBOUND_ALLOW_PRIVATE", DEBUG)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # On every handler: no PAN, OTP or secret ever reaches a log line.
        "scrub": {"()": "apps.core.logging.ScrubbingFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["scrub"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # The Twilio client logs request details at DEBUG/INFO; keep it to warnings.
        "twilio": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
