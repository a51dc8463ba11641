"""Configuration read from the environment (SPEC I4), with typed parsers and safe defaults.

Development works with no environment at all (SQLite under ``instance/``, a secret generated
once and kept in ``instance/``); production refuses to start without a real secret key and
encryption key, because a guessable key would let anyone forge sessions or read secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent

load_dotenv(PROJECT_ROOT / ".env")

# Values that must never be accepted as a production secret.
WEAK_SECRETS = {"", "dev", "development", "secret", "changeme", "change-me", "test"}


class ConfigError(RuntimeError):
    """Raised when the configuration is unsafe or malformed; the message says how to fix it."""


def env_bool(name: str, default: bool = False) -> bool:
    """Parse 0/1, true/false, yes/no, on/off; anything else is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 0 or 1 (got {raw!r})")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from exc


def env_str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else raw.strip()


def instance_dir() -> Path:
    """Where local state lives (SQLite file, development secrets, mail, embedded Redis).

    Read when a ``Config`` is built rather than at import, so a process (or a test) can point
    ``SLOTBOOK_INSTANCE_DIR`` elsewhere after ``app.config`` has been imported.
    """
    return Path(os.environ.get("SLOTBOOK_INSTANCE_DIR") or PROJECT_ROOT / "instance")


def _instance_secret(directory: Path, filename: str, make) -> str:
    """Read a development secret from the instance folder, creating it on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Config:
    """Everything the app reads from the environment, resolved once at start-up."""

    TESTING = False
    # No request body may be larger: the biggest upload (a people CSV) is refused in words at
    # 5 MB by its own screen, so anything past this is not a form of ours (413, our page).
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024

    def __init__(self) -> None:
        self.ENV = env_str("SLOTBOOK_ENV", "development")
        if self.ENV not in {"development", "production", "testing"}:
            raise ConfigError("SLOTBOOK_ENV must be development, production or testing")
        production = self.ENV == "production"
        self.INSTANCE_DIR = instance_dir()

        self.SECRET_KEY = env_str("SECRET_KEY")
        keys = env_str("SLOTBOOK_ENCRYPTION_KEYS")
        if production:
            if (
                not self.SECRET_KEY
                or self.SECRET_KEY.lower() in WEAK_SECRETS
                or len(self.SECRET_KEY) < 32
            ):
                raise ConfigError(
                    "SECRET_KEY must be set to a random value of at least 32 characters in "
                    'production (python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
            if not keys:
                raise ConfigError(
                    "SLOTBOOK_ENCRYPTION_KEYS must be set in production "
                    "(generate one with `flask keys generate`)"
                )
        else:
            self.SECRET_KEY = self.SECRET_KEY or _instance_secret(
                self.INSTANCE_DIR, "secret_key", lambda: secrets.token_urlsafe(48)
            )
            if not keys:
                from app.security import generate_key

                keys = _instance_secret(self.INSTANCE_DIR, "encryption_keys", generate_key)
        _check_encryption_keys(keys)
        self.SLOTBOOK_ENCRYPTION_KEYS = keys

        default_db = _sqlite_url(self.INSTANCE_DIR / "slotbook.db")
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(env_str("DATABASE_URL", default_db))
        self.REDIS_URL = env_str("REDIS_URL")
        self.SLOTBOOK_NO_BACKGROUND_JOBS = env_bool("SLOTBOOK_NO_BACKGROUND_JOBS", False)
        # Operations (issue [11], app/logs.py): "json" writes one JSON object per log line;
        # SENTRY_DSN sends unhandled errors to Sentry (or a service speaking its protocol).
        self.LOG_FORMAT = (env_str("LOG_FORMAT", "text") or "text").lower()
        if self.LOG_FORMAT not in {"text", "json"}:
            raise ConfigError(f"LOG_FORMAT must be text or json (got {self.LOG_FORMAT!r})")
        self.SENTRY_DSN = env_str("SENTRY_DSN")
        if production:
            _check_background_work(self.REDIS_URL, self.SLOTBOOK_NO_BACKGROUND_JOBS)
        self.SLOTBOOK_BASE_URL = env_str("SLOTBOOK_BASE_URL", "http://127.0.0.1:5000")
        self.SLOTBOOK_ALLOW_PRIVATE_URLS = env_bool("SLOTBOOK_ALLOW_PRIVATE_URLS", False)

        self.MAIL_SERVER = env_str("MAIL_SERVER")
        self.MAIL_PORT = env_int("MAIL_PORT", 25)
        self.MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
        self.MAIL_USE_SSL = env_bool("MAIL_USE_SSL", False)
        self.MAIL_USERNAME = env_str("MAIL_USERNAME")
        self.MAIL_PASSWORD = env_str("MAIL_PASSWORD")
        self.MAIL_DEFAULT_SENDER = env_str("MAIL_DEFAULT_SENDER", "slotbook@localhost")
        self.MAIL_OUTBOX_DIR = env_str("MAIL_OUTBOX_DIR", str(self.INSTANCE_DIR / "mail"))
        self.MS_AUTHORITY_HOST = env_str("MS_AUTHORITY_HOST", "https://login.microsoftonline.com")
        self.MS_GRAPH_URL = env_str("MS_GRAPH_URL", "https://graph.microsoft.com/v1.0")
        # Google (issue [12]): OAuth endpoints and the Calendar API v3 base, so a deployment
        # or a test can point them elsewhere.
        self.GOOGLE_AUTH_URI = env_str(
            "GOOGLE_AUTH_URI", "https://accounts.google.com/o/oauth2/v2/auth"
        )
        self.GOOGLE_TOKEN_URI = env_str("GOOGLE_TOKEN_URI", "https://oauth2.googleapis.com/token")
        self.GOOGLE_CALENDAR_API_URL = env_str(
            "GOOGLE_CALENDAR_API_URL", "https://www.googleapis.com/calendar/v3"
        )
        self.SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL")
        self.SMS_GATEWAY_TOKEN = env_str("SMS_GATEWAY_TOKEN")
        # JSON with "{to}" and "{text}" placeholders; the default is {"to": …, "text": …}.
        self.SMS_GATEWAY_BODY = env_str("SMS_GATEWAY_BODY")
        # The header the token goes in: "Authorization" sends "Bearer <token>", any other
        # name (e.g. "X-API-Key") sends the token as it is.
        self.SMS_GATEWAY_AUTH_HEADER = env_str("SMS_GATEWAY_AUTH_HEADER", "Authorization")
        # How often the bell in the header asks for the unread count (N1).
        self.SLOTBOOK_BELL_POLL_SECONDS = env_int("SLOTBOOK_BELL_POLL_SECONDS", 15)

        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = production
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        # Outbox rows not done after this many seconds are re-enqueued by the sweeper.
        self.OUTBOX_SWEEP_AFTER_SECONDS = env_int("SLOTBOOK_OUTBOX_SWEEP_AFTER", 60)
        self.OUTBOX_MAX_ATTEMPTS = env_int("SLOTBOOK_OUTBOX_MAX_ATTEMPTS", 8)
        # Nights the Teams attendance job waits for a meeting's report before staff review it.
        self.TEAMS_ATTENDANCE_MAX_TRIES = env_int("SLOTBOOK_TEAMS_ATTENDANCE_MAX_TRIES", 3)
        # Abuse limits on the public pages (S6), in Flask-Limiter notation ("10/hour").
        self.SLOTBOOK_LIMIT_SLOT_QUERIES = env_str("SLOTBOOK_LIMIT_SLOT_QUERIES", "60/minute")
        self.SLOTBOOK_LIMIT_BOOKING_POSTS_IP = env_str("SLOTBOOK_LIMIT_BOOKING_POSTS_IP", "10/hour")
        self.SLOTBOOK_LIMIT_BOOKING_POSTS_CONTACT = env_str(
            "SLOTBOOK_LIMIT_BOOKING_POSTS_CONTACT", "5/day"
        )
        # Forgot-password posts (P3): per client IP and per email address typed.
        self.SLOTBOOK_LIMIT_PASSWORD_RESET_IP = env_str(
            "SLOTBOOK_LIMIT_PASSWORD_RESET_IP", "20/hour"
        )
        self.SLOTBOOK_LIMIT_PASSWORD_RESET_EMAIL = env_str(
            "SLOTBOOK_LIMIT_PASSWORD_RESET_EMAIL", "5 per 15 minutes"
        )
        # Failed sign-ins (issue 08), counted per email typed (whether or not it has an
        # account) and per client address; over either, sign-in is refused with a 429 until
        # the window passes. Several limits may be given, separated by ";".
        self.SLOTBOOK_LIMIT_SIGN_IN_EMAIL = env_str(
            "SLOTBOOK_LIMIT_SIGN_IN_EMAIL", "5 per minute; 30 per hour"
        )
        self.SLOTBOOK_LIMIT_SIGN_IN_IP = env_str("SLOTBOOK_LIMIT_SIGN_IN_IP", "20 per 10 minutes")
        # Requests per personal calendar feed (F1); fails open like the slot queries.
        self.SLOTBOOK_LIMIT_FEED = env_str("SLOTBOOK_LIMIT_FEED", "20/minute")
        # Reverse proxies in front of the app whose X-Forwarded-For is trusted (0: none). Per-IP
        # limits count the proxy's address as every visitor's unless this is set.
        self.SLOTBOOK_TRUSTED_PROXIES = env_int("SLOTBOOK_TRUSTED_PROXIES", 0)


class TestConfig(Config):
    """Tests: a database given by the test run, CSRF on (tests prove it is enforced)."""

    TESTING = True

    def __init__(self, database_url: str, redis_url: str | None = None) -> None:
        os.environ.setdefault("SLOTBOOK_ENV", "testing")
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.REDIS_URL = redis_url
        self.SERVER_NAME = None
        # Tests sign in hundreds of times; hash strength is not what they are about.
        self.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # noqa: S105 - a method name


def _check_background_work(redis_url: str | None, without: bool) -> None:
    """Production needs Redis: without it the outbox (mail, calendar write-back, webhooks) is
    never delivered, nothing syncs, and rate limits are counted per process, so a start
    without ``REDIS_URL`` would look healthy while doing half its job. Running that way must
    be asked for by name."""
    if redis_url and without:
        raise ConfigError(
            "REDIS_URL and SLOTBOOK_NO_BACKGROUND_JOBS=1 are both set: unset one of them "
            "(Redis is used whenever REDIS_URL is set)"
        )
    if not redis_url and not without:
        raise ConfigError(
            "REDIS_URL must be set in production (e.g. redis://127.0.0.1:6379/0): without Redis "
            "no email, calendar write-back, webhook or reminder is ever sent, calendars never "
            "sync, and rate limits are counted per process. To run knowingly without any "
            "background work, set SLOTBOOK_NO_BACKGROUND_JOBS=1 instead."
        )


def _check_encryption_keys(value: str) -> None:
    """Refuse a malformed key ring at start-up instead of at the first secret sealed or read."""
    from app.security import KeyRing

    try:
        KeyRing.from_config(value)
    except ValueError as exc:
        raise ConfigError(
            f"SLOTBOOK_ENCRYPTION_KEYS is not usable: {exc} (generate one with "
            "`flask keys generate`; separate several with commas, newest first)"
        ) from exc


def normalise_database_url(url: str) -> str:
    """Accept the common ``postgres://`` spelling and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Writers wait for each other rather than failing at once (see app/database.py for the
        # BEGIN IMMEDIATE handling that makes the wait safe).
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # A database host that does not answer fails a connection (and /readyz) in 10 s instead
    # of the operating system's minutes-long TCP timeout.
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
