"""Settings of the demo project, read from the environment.

* ``DATABASE_URL`` — default: a SQLite file beside ``manage.py`` (embedded mode).
* ``REDIS_URL`` — unset: in-memory channel layer, one process; set: channels_redis
  (``BEACON_LAYER=pubsub`` (default) or ``core``), several processes.
* ``DJANGO_ENV=production`` — production hardening (see ``docs/deployment.md``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("DJANGO_ENV") == "production"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production")
    SECRET_KEY = "demo-insecure-key-for-local-use-only-0123456789abcdefghijklmnop"
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
# Who may read /metrics besides staff (demo.views.metrics): the scraper's addresses.
METRICS_ALLOWED_ADDRS = env_list("DEMO_METRICS_ALLOWED_ADDRS", "127.0.0.1,::1")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "beacon",
    "beacon.chat",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy: the site's own scripts, styles, images and sockets only;
# the one inline script (the import map) carries the response's nonce. Django 6 has
# this built in; older versions get demo/csp.py's equivalent middleware.
try:
    from django.utils.csp import CSP as _CSP  # Django >= 6.0
except ImportError:
    _CSP = None  # type: ignore[misc, assignment]  # Django 5.2: demo/csp.py instead
_SELF, _NONCE = ("'self'", "<nonce>") if _CSP is None else (_CSP.SELF, _CSP.NONCE)
DEMO_CSP = {
    "default-src": [_SELF],
    "script-src": [_SELF, _NONCE],
    "style-src": [_SELF],
    "img-src": [_SELF],
    "connect-src": [_SELF],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": [_SELF],
    "frame-ancestors": ["'none'"],
}
if _CSP is None:
    MIDDLEWARE.append("demo.csp.ContentSecurityPolicyMiddleware")
    _CSP_CONTEXT = "demo.csp.nonce"
else:
    SECURE_CSP = DEMO_CSP
    MIDDLEWARE.append("django.middleware.csp.ContentSecurityPolicyMiddleware")
    _CSP_CONTEXT = "django.template.context_processors.csp"

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                _CSP_CONTEXT,
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DB_POOL", not int(os.environ.get("DB_CONN_MAX_AGE", "0"))
):
    # Django's advice under ASGI: no persistent connections, the driver's pool instead.
    # Without it every off-loop ORM call (session auth, subscribe) opens a connection.
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 20, "timeout": 10}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so concurrent writers wait
    # their turn (busy timeout) instead of failing with "database is locked"; WAL lets
    # readers (the log watcher) run beside a writer in another process.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: the server threads and processes of the tests must share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_NAME", str(BASE_DIR / "test-db.sqlite3"))
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    layer = os.environ.get("BEACON_LAYER", "pubsub")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": (
                "channels_redis.pubsub.RedisPubSubChannelLayer"
                if layer == "pubsub"
                else "channels_redis.core.RedisChannelLayer"
            ),
            # The prefix keeps deployments (or test runs) that share one Redis apart.
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("BEACON_REDIS_PREFIX", "asgi"),
            }
            | ({"capacity": 10_000} if layer == "core" else {}),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)

BEACON: dict[str, Any] = {
    key: float(os.environ[f"BEACON_{key}"])
    for key in (
        "LOG_POLL_SECONDS",
        "HEARTBEAT_SECONDS",
        "PRESENCE_TTL_SECONDS",
        "SOCKET_MAX_BYTES",
        "SSE_KEEPALIVE_SECONDS",
    )
    if os.environ.get(f"BEACON_{key}")
}
# All three credentials; the bearer token as djangorestframework-simplejwt makes it by
# default (HS256 with SECRET_KEY, the user id in "user_id").
BEACON["AUTHENTICATORS"] = [
    "beacon.identity.SessionAuthenticator",
    "beacon.identity.TicketAuthenticator",
    "beacon.identity.BearerTokenAuthenticator",
]
BEACON.update(
    {
        key: int(os.environ[f"BEACON_{key}"])
        for key in ("TICKET_SECONDS", "MAX_CONNECTIONS_PER_USER", "HTTP_WRITES_PER_MINUTE")
        if os.environ.get(f"BEACON_{key}")
    }
)
if os.environ.get("BEACON_REVALIDATE_SECONDS"):
    BEACON["REVALIDATE_SECONDS"] = float(os.environ["BEACON_REVALIDATE_SECONDS"])

# One Pusher app (docs/pusher.md). The demo secret is refused by `check --deploy`; in
# production the Pusher door is off until BEACON_PUSHER_SECRET is set.
PUSHER_SECRET = os.environ.get("BEACON_PUSHER_SECRET", "" if PRODUCTION else "demo-secret")
BEACON["PUSHER_APPS"] = [
    {
        "id": os.environ.get("BEACON_PUSHER_APP_ID", "100001"),
        "key": os.environ.get("BEACON_PUSHER_KEY", "demo-key"),
        "secret": PUSHER_SECRET,
        "client_events": True,
        "webhook_url": os.environ.get("BEACON_PUSHER_WEBHOOK_URL") or None,
        "activity_timeout": int(os.environ.get("BEACON_PUSHER_ACTIVITY_TIMEOUT", "120")),
    }
] if PUSHER_SECRET else []

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"beacon": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Prometheus and health checks reach a process directly over HTTP on 127.0.0.1.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$", r"^beacon/healthz$"]
    # JSON lines on stderr (the journal): no frame text, no cookies (beacon.jsonlog).
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "beacon.jsonlog.JsonLinesFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    }
    # Celery logs through the same root logger instead of its own format.
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
