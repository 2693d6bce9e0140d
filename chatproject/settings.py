"""Settings, read from the environment (and an optional `.env` beside manage.py).

With nothing configured the server runs on an embedded default: SQLite, a local SecantusDB
started by `make run`, an in-memory channel layer and eager Celery tasks. Setting
POSTGRESQL_URL / REDIS_URL / MONGODB_URL switches each part to the real service.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A production secret never has a default; the embedded development mode gets a
# throwaway one so `make run` works on a fresh machine.
_dev_mode = env.bool("CHAT_DEV_MODE", default=False)
_secret = env.str("SECRET_KEY", default="")
if not _secret:
    if not _dev_mode:
        raise ImproperlyConfigured("SECRET_KEY must be set (or CHAT_DEV_MODE=true for local runs)")
    _secret = "dev-only-insecure-secret-key-change-me-0123456789abcdef"
SECRET_KEY = _secret

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS ---------------------------------------------------------------------------------------
# HTTPS=true (the default but in development mode): browsers reach the site over TLS only, served by
# a proxy in front of this process. Plain http is redirected to https (but for /health and
# /health/ready: load balancers probe over http), cookies are secure-only and HSTS tells browsers to
# come back on https. HTTPS=false for a server spoken to over plain http: development mode (`make
# run` without a SECRET_KEY) has it by default; the tests and benchmarks set it.
HTTPS = env.bool("HTTPS", default=not _dev_mode)
SILENCED_SYSTEM_CHECKS: list[str] = []


def _meta_header(name: str) -> str:
    """`X-Forwarded-Proto` or `HTTP_X_FORWARDED_PROTO` -> the request.META key Django compares."""
    key = name.strip().upper().replace("-", "_")
    return key if key.startswith("HTTP_") else f"HTTP_{key}"


# Behind a proxy that terminates TLS, requests arrive over http: name the header the proxy sets to
# say the client used https (`HTTP_X_FORWARDED_PROTO` for X-Forwarded-Proto; the proxy must
# overwrite a client's own), or every request is redirected again and again. Unset, no header is
# believed (Uvicorn also takes the scheme from X-Forwarded-Proto of the FORWARDED_ALLOW_IPS proxies).
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER_NAME", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (
        _meta_header(_proxy_ssl_header),
        env.str("SECURE_PROXY_SSL_HEADER_VALUE", default="https"),
    )
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# Probes and scrapers inside the deployment's network speak plain http to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^health(/ready)?$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
# Sent on https responses only. A year, as the preload list asks; lower it while first trying TLS out.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Opt-in: with `preload` in the header anyone may submit the domain to the browsers' built-in list,
# which is hard to leave and binds every subdomain. Off, Django's reminder (W021) is silenced.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS.append("security.W021")
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = env.str("SECURE_CROSS_ORIGIN_OPENER_POLICY", default="same-origin")
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: /api/docs/ needs no CDN
    "channels",
    # Lowest layer first: each app imports only apps listed before it (and core/).
    "accounts",
    "rooms",
    "notifications",
    "files",
    "messaging",
    "realtime",
    "search",
]

MIDDLEWARE = [
    "chatproject.middleware.RequestIdMiddleware",
    "chatproject.monitoring.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatproject.urls"
APPEND_SLASH = False

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

WSGI_APPLICATION = "chatproject.wsgi.application"
ASGI_APPLICATION = "chatproject.asgi.application"

# --- PostgreSQL (users, rooms, memberships) -------------------------------------------------
_pg_url = env.str("POSTGRESQL_URL", default="")
if _pg_url:
    DATABASES = {"default": env.db_url_config(_pg_url)}
    if env.bool("DB_POOL", default=True):
        # Connections are thread-bound in Django, and request threads (asgi_handler.py) and the
        # consumers' threads come and go: a pool lends one per request, so no idle thread holds
        # one and a burst of threads never opens more than max_size.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / ".data" / "db.sqlite3")),
        }
    }

# --- MongoDB (messages) -----------------------------------------------------------------------
MONGODB_URL = env.str("MONGODB_URL", default="mongodb://127.0.0.1:27018")
MONGODB_NAME = env.str("MONGODB_NAME", default="chat")
MONGODB_TIMEOUT_MS = env.int("MONGODB_TIMEOUT_MS", default=3000)
# An ack means durable: writes wait for a majority of the replica set and its journal. A number
# ("1") is taken as a count of members.
_write_concern = env.str("MONGODB_WRITE_CONCERN", default="majority")
MONGODB_WRITE_CONCERN: str | int = int(_write_concern) if _write_concern.isdigit() else _write_concern
MONGODB_JOURNAL = env.bool("MONGODB_JOURNAL", default=True)

# --- Redis (channel layer, cache for rate limits, Celery broker) ------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # "pubsub": one Redis PUBLISH per event, fanned out to local sockets in each process;
    # "core": channels_redis' list-per-channel layer (one Redis entry per receiving socket).
    # Both are at-most-once; consumers fill gaps from MongoDB. With the per-process fan-out hub
    # both reached the same knees in bench/ (README); pubsub keeps no per-channel lists in Redis.
    _layers = {
        "pubsub": "core.channel_layer.ResilientPubSubChannelLayer",
        "core": "channels_redis.core.RedisChannelLayer",
    }
    _layer = env.str("CHANNEL_LAYER", default="pubsub")
    if _layer not in _layers:
        raise ImproperlyConfigured("CHANNEL_LAYER must be pubsub or core")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _layers[_layer],
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chat"),
        }
    }
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    # One process only in this mode: a process-local cache is the shared cache.
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003", "django_ratelimit.W001"]
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="chat")  # deployments may share a Redis
# A broker outage must not stall a post: publishing a task gives up fast (the sweep catches up).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
# A worker waits for a broker that is away (at start and after losing it) instead of exiting;
# `make run` also restarts it if it exits anyway.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
# A post's room is handed to the indexing worker this long after it (with every other room posted
# to meanwhile in this process), instead of one Redis flag and one task message per post.
INDEXING_COALESCE_SECONDS = env.float("INDEXING_COALESCE_SECONDS", default=0.05)
CELERY_BEAT_SCHEDULE = {
    "search-index-sweep": {
        "task": "messaging.tasks.index_sweep",
        "schedule": env.float("SEARCH_SWEEP_SECONDS", default=60.0),
    },
    "expire-unfinished-uploads": {"task": "messaging.tasks.expire_uploads", "schedule": 15 * 60.0},
    "forget-old-revocations": {"task": "accounts.tasks.forget_old_revocations", "schedule": 60 * 60.0},
    "forget-old-log-entries": {"task": "accounts.tasks.forget_old_log_entries", "schedule": 60 * 60.0},
    "forget-ended-bans-and-mutes": {"task": "rooms.tasks.forget_ended_sanctions", "schedule": 60 * 60.0},
    "email-digests": {
        "task": "notifications.tasks.send_email_digests",
        "schedule": env.float("EMAIL_DIGEST_SWEEP_SECONDS", default=60.0),
    },
}

# --- Auth ----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env.bool("FAST_PASSWORD_HASHER", default=False):
    # Tests only: the default PBKDF2 cost dominates a suite that registers many users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ALGORITHM = env.str("ALGORITHM", default="HS256")
ACCESS_TOKEN_EXPIRE_MINUTES = env.int("ACCESS_TOKEN_EXPIRE_MINUTES", default=30)
REFRESH_TOKEN_EXPIRE_DAYS = env.int("REFRESH_TOKEN_EXPIRE_DAYS", default=14)
if ALGORITHM not in {"HS256", "HS384", "HS512"}:
    raise ImproperlyConfigured(f"ALGORITHM must be HS256, HS384 or HS512, not {ALGORITHM!r}")
if ACCESS_TOKEN_EXPIRE_MINUTES <= 0:
    raise ImproperlyConfigured("ACCESS_TOKEN_EXPIRE_MINUTES must be positive")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": ALGORITHM,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# --- Limits (every one a setting) -------------------------------------------------------------
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATE_LIMIT_REQUESTS = env.int("RATE_LIMIT_REQUESTS", default=60)
RATE_LIMIT_WINDOW = env.int("RATE_LIMIT_WINDOW", default=60)


def _rate(name: str, default: str) -> str:
    """A django-ratelimit rate ("20/h", "10/5m"): refused at start when malformed, since the
    counters fail open and a typo would otherwise switch the limit off without a word."""
    value = env.str(name, default=default)
    if not re.fullmatch(r"[0-9]+/[0-9]*[smhd]", value):
        raise ImproperlyConfigured(f"{name} must look like 20/h or 10/5m, not {value!r}")
    return value


LOGIN_RATE_LIMIT = _rate("LOGIN_RATE_LIMIT", "10/5m")
LOGIN_NAME_RATE_LIMIT = _rate("LOGIN_NAME_RATE_LIMIT", "20/h")  # failed logins per account name
REGISTER_RATE_LIMIT = _rate("REGISTER_RATE_LIMIT", "20/h")
# Per user, over REST and sockets alike (429 with Retry-After); posts use RATE_LIMIT_REQUESTS.
ROOM_CREATE_RATE_LIMIT = _rate("ROOM_CREATE_RATE_LIMIT", "20/h")
INVITE_RATE_LIMIT = _rate("INVITE_RATE_LIMIT", "100/h")  # members one user adds to rooms
BLOCK_RATE_LIMIT = _rate("BLOCK_RATE_LIMIT", "60/h")  # people one user blocks
INVITE_LINK_RATE_LIMIT = _rate("INVITE_LINK_RATE_LIMIT", "30/h")  # invite links one user makes
INVITE_LOOKUP_RATE_LIMIT = _rate("INVITE_LOOKUP_RATE_LIMIT", "60/m")  # invite codes one user looks up or accepts
EDIT_RATE_LIMIT = _rate("EDIT_RATE_LIMIT", "60/m")  # edits and deletions
REACTION_RATE_LIMIT = _rate("REACTION_RATE_LIMIT", "120/m")
WS_TICKET_RATE_LIMIT = _rate("WS_TICKET_RATE_LIMIT", "60/m")
SEARCH_RATE_LIMIT = _rate("SEARCH_RATE_LIMIT", "60/m")
ROOM_LIST_RATE_LIMIT = _rate("ROOM_LIST_RATE_LIMIT", "120/m")
DIRECT_ROOM_RATE_LIMIT = _rate("DIRECT_ROOM_RATE_LIMIT", "60/h")  # POST /api/dms per user
AVATAR_RATE_LIMIT = _rate("AVATAR_RATE_LIMIT", "20/h")  # avatar uploads per user
PEOPLE_SEARCH_RATE_LIMIT = _rate("PEOPLE_SEARCH_RATE_LIMIT", "60/m")  # so the directory is no way to list everyone
# Spam control (messaging/spam.py; off with RATELIMIT_ENABLE=false): the same text (of at least
# SPAM_REPEAT_MIN_LENGTH characters) at most SPAM_REPEAT_LIMIT times per SPAM_REPEAT_WINDOW_SECONDS per
# user across rooms; accounts younger than NEW_ACCOUNT_SECONDS at most NEW_ACCOUNT_MAX_LINKS links a message.
SPAM_REPEAT_LIMIT = env.int("SPAM_REPEAT_LIMIT", default=5)
SPAM_REPEAT_WINDOW_SECONDS = env.int("SPAM_REPEAT_WINDOW_SECONDS", default=60)
SPAM_REPEAT_MIN_LENGTH = env.int("SPAM_REPEAT_MIN_LENGTH", default=12)
NEW_ACCOUNT_SECONDS = env.int("NEW_ACCOUNT_SECONDS", default=3600)
NEW_ACCOUNT_MAX_LINKS = env.int("NEW_ACCOUNT_MAX_LINKS", default=2)
REPORT_RATE_LIMIT = _rate("REPORT_RATE_LIMIT", "20/h")  # reports one user files
MODERATION_RATE_LIMIT = _rate("MODERATION_RATE_LIMIT", "300/h")  # bans and mutes one moderator makes
if min(SPAM_REPEAT_LIMIT, SPAM_REPEAT_WINDOW_SECONDS, NEW_ACCOUNT_MAX_LINKS + 1, NEW_ACCOUNT_SECONDS + 1) < 1:
    raise ImproperlyConfigured("The spam limits must be positive (NEW_ACCOUNT_* may be 0)")
# `@room` notifies every member: only moderators may use it in rooms bigger than this.
ROOM_MENTION_MAX_MEMBERS = env.int("ROOM_MENTION_MAX_MEMBERS", default=50)
# Sockets one user may hold open at once, over every process (each room socket counts).
WS_MAX_SOCKETS_PER_USER = env.int("WS_MAX_SOCKETS_PER_USER", default=100)
# Different emoji one message may carry (each frame and page carries them all).
MAX_DISTINCT_REACTIONS = env.int("MAX_DISTINCT_REACTIONS", default=50)
MESSAGE_MAX_LENGTH = env.int("MESSAGE_MAX_LENGTH", default=10_000)
ROOM_NAME_MAX_LENGTH = 100
UNREAD_COUNT_CAP = env.int("UNREAD_COUNT_CAP", default=1000)
SEARCH_QUERY_MAX_LENGTH = env.int("SEARCH_QUERY_MAX_LENGTH", default=500)
SEARCH_TIMEOUT_MS = env.int("SEARCH_TIMEOUT_MS", default=3000)  # a broader query is a 400, not a stall
# How long a process reuses a user row it read (authentication, message authors' names): also how
# long a deactivated account's REST requests may still pass on another process than the admin's.
USER_CACHE_SECONDS = env.float("USER_CACHE_SECONDS", default=1.0)
# Messages of recently read pages kept per process (messaging/page_cache.py); 0 turns it off.
# HISTORY_CACHE_MESSAGES is its earlier name, still read so existing deployments keep their setting.
PAGE_CACHE_MESSAGES = env.int("PAGE_CACHE_MESSAGES", default=env.int("HISTORY_CACHE_MESSAGES", default=20_000))

METRICS_TOKEN = env.str("METRICS_TOKEN", default="")  # when set, GET /metrics requires it as a bearer token

# --- Notifications: Web Push and e-mail -----------------------------------------------------------
# The VAPID key pair (RFC 8292) that signs every push: `manage.py vapid_keys` makes one, to keep in
# the environment (never in the repository). Without one, push is off (GET /api/push/key is 503),
# except in development mode, where a key derived from the (throwaway) SECRET_KEY keeps it on.
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
if VAPID_PRIVATE_KEY and not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", VAPID_PRIVATE_KEY):
    raise ImproperlyConfigured("VAPID_PRIVATE_KEY must be a raw P-256 key in URL-safe base64 (manage.py vapid_keys)")
if not VAPID_PRIVATE_KEY and _dev_mode:
    import base64
    import hashlib

    VAPID_PRIVATE_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"vapid:" + SECRET_KEY.encode()).digest()).decode()
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:admin@localhost")  # who push services may contact
# Push endpoints are URLs this server calls: https on public addresses only, unless this is set
# (development and tests: plain http and loopback endpoints too).
PUSH_ALLOW_INSECURE_ENDPOINTS = env.bool("PUSH_ALLOW_INSECURE_ENDPOINTS", default=_dev_mode)
PUSH_TTL_SECONDS = env.int("PUSH_TTL_SECONDS", default=24 * 3600)  # how long a push service keeps an undelivered one
PUSH_TIMEOUT_SECONDS = env.float("PUSH_TIMEOUT_SECONDS", default=10.0)
PUSH_MAX_RETRIES = env.int("PUSH_MAX_RETRIES", default=6)  # then given up (backoff 2 s, 4 s, ... 64 s)
PUSH_MAX_SUBSCRIPTIONS_PER_USER = env.int("PUSH_MAX_SUBSCRIPTIONS_PER_USER", default=20)  # the oldest go
PUSH_SUBSCRIBE_RATE_LIMIT = _rate("PUSH_SUBSCRIBE_RATE_LIMIT", "30/h")
# E-mail: one digest per user per EMAIL_NOTIFY_DELAY seconds, of the DMs and mentions unread on
# every device that long; sent by Celery beat every EMAIL_DIGEST_SWEEP_SECONDS.
EMAIL_NOTIFY_DELAY = env.int("EMAIL_NOTIFY_DELAY", default=600)
EMAIL_DIGEST_SWEEP_SECONDS = env.float("EMAIL_DIGEST_SWEEP_SECONDS", default=60.0)
if EMAIL_NOTIFY_DELAY < 1 or EMAIL_DIGEST_SWEEP_SECONDS <= 0:
    raise ImproperlyConfigured("EMAIL_NOTIFY_DELAY and EMAIL_DIGEST_SWEEP_SECONDS must be positive")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if _dev_mode
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Chat <chat@localhost>")
# Where links in e-mails point: the address people reach this site at.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")

# --- Files ---------------------------------------------------------------------------------------
UPLOAD_MAX_SIZE = env.int("UPLOAD_MAX_SIZE", default=1024**3)  # bytes per file
UPLOAD_USER_QUOTA = env.int("UPLOAD_USER_QUOTA", default=20 * 1024**3)  # bytes per user, unfinished included
UPLOAD_EXPIRE_HOURS = env.float("UPLOAD_EXPIRE_HOURS", default=24.0)  # unfinished uploads are then deleted
UPLOAD_TEMP_DIR = env.str("UPLOAD_TEMP_DIR", default=str(BASE_DIR / ".data" / "uploads-partial"))
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", default=50_000_000)  # decompression-bomb guard
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=320)
AVATAR_MAX_SIZE = env.int("AVATAR_MAX_SIZE", default=10 * 1024**2)  # bytes of the uploaded picture (a phone photo)
AVATAR_SIZE = env.int("AVATAR_SIZE", default=256)  # pixels on a side of the stored square
if not 16 <= AVATAR_SIZE <= 1024:
    raise ImproperlyConfigured("AVATAR_SIZE must be between 16 and 1024 pixels")
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media"))
_file_storage = env.str("FILE_STORAGE", default="local")
if _file_storage == "s3":
    # Any S3-compatible store (AWS, MinIO, Ceph...): django-storages reads the AWS_* settings.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif _file_storage == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured("FILE_STORAGE must be local or s3")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.CachedJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "core.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chat server API",
    "DESCRIPTION": "REST side of the public contract; docs/api.md gives the overview, docs/websocket.md the sockets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["core.schema.name_path_parameters"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.document_errors",
        "core.schema.describe_path_parameters",
    ],
    # /api/docs/ loads Swagger UI from our own static files (drf_spectacular_sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "staticfiles"
# Served straight from static/ as well: the UI needs no collectstatic (nor any build) to run.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
RATELIMIT_FAIL_OPEN = True

# --- WebSocket ---------------------------------------------------------------------------------
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=64 * 1024)
# Threads a process's event loop runs socket posts on (core.blocking.off_loop_post): how many can
# wait in one group commit together. Each holds a database connection while it posts.
SOCKET_POST_THREADS = env.int("SOCKET_POST_THREADS", default=12)
if not 1 <= SOCKET_POST_THREADS <= 256:
    raise ImproperlyConfigured("SOCKET_POST_THREADS must be between 1 and 256")
# Frames queued for one socket (bytes of text). A client that falls this far behind is closed 4408
# and resumes from MongoDB with ?since=, so one slow reader never holds up anyone else's frames.
WS_SEND_QUEUE_BYTES = env.int("WS_SEND_QUEUE_BYTES", default=1024 * 1024)
# The socket's own frames (replays, acks) wait for room in that queue at most this long.
WS_SEND_STALL_SECONDS = env.float("WS_SEND_STALL_SECONDS", default=15.0)
WS_FLOOD_RATE = env.float("WS_FLOOD_RATE", default=20.0)  # frames per second per socket, sustained
WS_FLOOD_BURST = env.int("WS_FLOOD_BURST", default=60)
WS_TICK_SECONDS = env.float("WS_TICK_SECONDS", default=5.0)  # catch-up poll and presence refresh
# How often each process reads revoked access (accounts/revocations.py): a removed member's or a
# deactivated account's sockets close at once by the channel layer, at the latest after this.
REVOCATION_POLL_SECONDS = env.float("REVOCATION_POLL_SECONDS", default=0.5)
WS_PRESENCE_TTL_SECONDS = env.float("WS_PRESENCE_TTL_SECONDS", default=30.0)
WS_REPLAY_WINDOW = env.int("WS_REPLAY_WINDOW", default=500)
# The user stream's cursor (docs/websocket.md): how far behind its clock a cursor's time stays.
# It must exceed the store's commit limit (20 s) plus the clock skew between server processes.
STREAM_CURSOR_MARGIN_SECONDS = env.float("STREAM_CURSOR_MARGIN_SECONDS", default=60.0)
USER_LOG_KEEP_DAYS = env.int("USER_LOG_KEEP_DAYS", default=30)  # older cursors get `cursor_expired`
WS_PRESENCE_PUSH_LIMIT = env.int("WS_PRESENCE_PUSH_LIMIT", default=200)  # members; bigger rooms poll presence
