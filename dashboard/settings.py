"""EventFlow settings: read from the environment, with defaults that run anywhere.

Zero configuration gives SQLite and an embedded Valkey under ``var/``;
``DATABASE_URL`` and ``REDIS_URL`` point the project at real servers.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from eventflow.conf import DEFAULTS as ENGINE

from .paths import API_PREFIX

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name) or default  # set but empty: the default, as for the other helpers


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Development key only: production must set SECRET_KEY (a system check says so).
SECRET_KEY = env_str("SECRET_KEY", "django-insecure-eventflow-development-only")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Where the embedded Valkey and the default SQLite database live (git-ignored).
DATA_DIR = Path(env_str("EVENTFLOW_DATA_DIR", str(BASE_DIR / "var")))
EVENTFLOW_DATA_DIR = DATA_DIR  # the embedded Valkey's home (eventflow.conf)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "eventflow",
    "dashboard",
    "axes",  # login throttling (below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out login
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"

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
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'eventflow.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server and the workers read while one of them writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# collectstatic (serve runs it) writes hashed, compressed copies; the web processes serve them
# with far-future caching (dashboard.static_files). Uncollected checkouts link the plain names.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "dashboard.static_files.HashedStaticFiles"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# Login throttling (django-axes), for the dashboard's login and the admin's: after
# LOGIN_FAILURE_LIMIT wrong passwords for one user from one address, that login is
# locked for LOGIN_LOCKOUT_MINUTES, even for the right password. `manage.py
# axes_reset_username NAME` lifts it sooner. authenticate() needs the request now
# (tests log in with force_login).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # a guesser cannot lock a user out from everywhere
AXES_RESET_ON_SUCCESS = True  # a few typos, then the right password: the count starts again
AXES_COOLOFF_MESSAGE = "Login locked: too many failed logins for this user from your address. Try again later."
LOGOUT_REDIRECT_URL = "login"

# --- Security: safe for local runs by default; production sets these (see check --deploy) ---
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"
# Every response gets this Content-Security-Policy (django.middleware.csp). Everything is
# served by the project (vendored htmx, our CSS and JS); no inline script or style, so
# injected markup cannot run. 'self' covers ws:// of this host (the live sockets).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO trusts its header.
if env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER"), "https")
# The health check stays reachable over plain HTTP for load balancers and probes.
SECURE_REDIRECT_EXEMPT = [rf"^{re.escape(API_PREFIX)}health$"]
# The API answers a failed CSRF check with a JSON error; other pages keep Django's.
CSRF_FAILURE_VIEW = "eventflow.api.csrf_failure"

# --- Redis: one URL for the streams and the channel layer --------------------
# Unset: an embedded Valkey on a unix socket under DATA_DIR, started on demand.
# A redis+cluster:// URL puts the streams on a Redis Cluster; the channel layer
# cannot use a cluster, so it then needs CHANNEL_REDIS_URL (a plain server).
REDIS_URL = env_str("REDIS_URL", "")
EVENTFLOW_KEY_PREFIX = env_str("EVENTFLOW_KEY_PREFIX", ENGINE["KEY_PREFIX"])
EVENTFLOW_EMBEDDED_REDIS = REDIS_URL == ""
EVENTFLOW_REDIS_URL = REDIS_URL or f"unix://{DATA_DIR / 'valkey.sock'}"
CHANNEL_REDIS_URL = env_str("CHANNEL_REDIS_URL", "" if "+cluster://" in REDIS_URL else EVENTFLOW_REDIS_URL)
if not CHANNEL_REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL names a cluster: set CHANNEL_REDIS_URL to a plain Redis for live updates")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout=None: idle channel-layer connections must not time out.
            # max_connections: redis-py's async pool raises past its limit (100) instead of
            # waiting, so a hundred tabs reconnecting at once would fail their handshakes.
            "hosts": [{"address": CHANNEL_REDIS_URL, "socket_timeout": None, "max_connections": 1000}],
            "prefix": EVENTFLOW_KEY_PREFIX + "asgi",
            "capacity": 1000,
            "group_expiry": 600,
        },
    }
}

# --- Engine knobs (read through eventflow.conf; its DEFAULTS are the one default) ---
EVENTFLOW_SYNC = env_bool("EVENTFLOW_SYNC", ENGINE["SYNC"])
EVENTFLOW_DEDUP_WINDOW = env_int("EVENTFLOW_DEDUP_WINDOW", ENGINE["DEDUP_WINDOW"])
EVENTFLOW_MAX_BODY_BYTES = env_int("EVENTFLOW_MAX_BODY_BYTES", ENGINE["MAX_BODY_BYTES"])
EVENTFLOW_MAX_BATCH_EVENTS = env_int("EVENTFLOW_MAX_BATCH_EVENTS", ENGINE["MAX_BATCH_EVENTS"])
EVENTFLOW_BATCH_SIZE = env_int("EVENTFLOW_BATCH_SIZE", ENGINE["BATCH_SIZE"])
EVENTFLOW_ALLOW_EVICTING_REDIS = env_bool("EVENTFLOW_ALLOW_EVICTING_REDIS", ENGINE["ALLOW_EVICTING_REDIS"])
# /metrics: scrapers on these addresses/networks need no token; anyone else needs the bearer token.
EVENTFLOW_METRICS_ALLOW = env_list("EVENTFLOW_METRICS_ALLOW", list(ENGINE["METRICS_ALLOW"]))
EVENTFLOW_METRICS_TOKEN = env_str("EVENTFLOW_METRICS_TOKEN", ENGINE["METRICS_TOKEN"])
# Where the monitor runs: "auto" (in every web process, one elected) or "off" (run `manage.py monitor`).
EVENTFLOW_MONITOR = env_str("EVENTFLOW_MONITOR", ENGINE["MONITOR"])
# Django refuses bodies past this before our own limit can name the problem.
DATA_UPLOAD_MAX_MEMORY_SIZE = EVENTFLOW_MAX_BODY_BYTES + 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
