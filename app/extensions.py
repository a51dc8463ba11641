"""Flask extensions, created unbound and attached in ``create_app`` (init_app pattern)."""

from flask import current_app
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from sqlalchemy import MetaData

# Named constraints so Alembic migrations are stable across SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects stay readable after commit (routes render after committing; jobs log after).
db = SQLAlchemy(
    metadata=MetaData(naming_convention=NAMING), session_options={"expire_on_commit": False}
)
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
# Public pages only (app/public/limits.py): no default limits, so staff pages and the API are
# never limited. Storage and limits come from the app config in ``init_limits``.
limiter = Limiter(key_func=lambda: "global", default_limits=[], headers_enabled=True)


# --- Redis ------------------------------------------------------------------------------

_REDIS = "slotbook_redis"


def redis_client() -> Redis:
    """The running app's one Redis client (RQ queues, periodic claims, token-use notes).

    Built on first use and kept on the app: a client per call would open a connection per
    enqueue. redis-py clients are thread-safe and their pool reconnects after a Redis restart
    (or a fork), so one per app is enough. Raises ``ConnectionError`` without ``REDIS_URL``.
    """
    app = current_app._get_current_object()
    url = app.config.get("REDIS_URL")
    if not url:
        raise ConnectionError("REDIS_URL is not set; background jobs cannot be queued")
    cached = app.extensions.get(_REDIS)
    if cached is None or cached[0] != url:  # tests may point an app at another server
        cached = (url, new_redis_client(url))
        app.extensions[_REDIS] = cached
    return cached[1]


def new_redis_client(url: str) -> Redis:
    """A client of its own (the worker's, whose pool RQ re-tunes for blocking reads)."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
