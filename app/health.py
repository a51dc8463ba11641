"""``/healthz`` and ``/readyz`` for load balancers and systemd (SPEC I7), and the worker's
heartbeat that ``/readyz`` reads.

- ``/healthz``: the process is up and answering. It touches nothing else, so a load balancer
  never takes every web process out of rotation because a shared service blinked.
- ``/readyz``: this process can do its job: the database answers, Redis answers, the schema is
  at the migrations' head (a web process started before ``flask db upgrade`` finished is not
  ready), and some worker beat within the last minute (without one, nothing is delivered).

Both answer JSON with one result per check, 200 or 503, without sign-in. They say nothing an
outsider could use: no host names, URLs, versions or exception texts (a driver's message can
carry a connection string), only which check failed and a fixed sentence why.

The heartbeat is one Redis key that every worker (long-running or ``--burst``) sets with a
60-second expiry, so "fresher than a minute" is Redis's own clock: hosts whose clocks differ
cannot make a dead worker look alive or a live one look dead.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, current_app
from flask.wrappers import Response
from redis import Redis
from sqlalchemy import text

from app.extensions import db, redis_client

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

HEARTBEAT_KEY = "slotbook:worker:heartbeat"
HEARTBEAT_SECONDS = 60  # a worker silent this long counts as gone
BEAT_EVERY_SECONDS = 5  # how often a long-running worker beats (its ticker's period)

_HEADS = "slotbook_migration_heads"


def beat(connection: Redis) -> None:
    """Record that a worker is alive now; the key lapses after ``HEARTBEAT_SECONDS``."""
    connection.set(HEARTBEAT_KEY, "1", ex=HEARTBEAT_SECONDS)


# --- checks ----------------------------------------------------------------------------------


def _ok(**extra: Any) -> dict:
    return {"ok": True, **extra}


def _failed(detail: str) -> dict:
    return {"ok": False, "detail": detail}


def check_database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return _ok()
    except Exception as exc:  # one short line: a probe every few seconds must not flood logs
        log.warning("readyz: the database did not answer (%s)", type(exc).__name__)
        db.session.rollback()
        return _failed("the database does not answer")


def migration_heads(app: Flask) -> frozenset[str]:
    """The revisions at the head of ``migrations/``, read once per process."""
    heads = app.extensions.get(_HEADS)
    if heads is None:
        from alembic.script import ScriptDirectory

        config = app.extensions["migrate"].migrate.get_config()
        heads = frozenset(ScriptDirectory.from_config(config).get_heads())
        app.extensions[_HEADS] = heads
    return heads


def check_migrations() -> dict:
    want = migration_heads(current_app._get_current_object())
    try:
        have = set(db.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception:
        db.session.rollback()
        return _failed("the schema is not migrated: run flask db upgrade")
    if have != want:
        return _failed("the schema is not at the latest migration: run flask db upgrade")
    return _ok()


def _without_background_jobs() -> bool:
    """An installation started knowingly without Redis (``SLOTBOOK_NO_BACKGROUND_JOBS=1``)."""
    config = current_app.config
    return not config.get("REDIS_URL") and bool(config.get("SLOTBOOK_NO_BACKGROUND_JOBS"))


NOT_USED = "not used: SLOTBOOK_NO_BACKGROUND_JOBS=1"


def check_redis() -> tuple[dict, Redis | None]:
    if _without_background_jobs():
        return _ok(detail=NOT_USED), None
    try:
        connection = redis_client()
        connection.ping()
        return _ok(), connection
    except Exception as exc:
        log.warning("readyz: Redis did not answer (%s)", type(exc).__name__)
        return _failed("Redis does not answer"), None


def check_worker(connection: Redis | None) -> dict:
    if _without_background_jobs():
        return _ok(detail=NOT_USED)
    if connection is None:
        return _failed("unknown: Redis does not answer")
    try:
        remaining_ms = connection.pttl(HEARTBEAT_KEY)
    except Exception:
        return _failed("unknown: Redis does not answer")
    if remaining_ms is None or remaining_ms < 0:  # -2: no key (-1 cannot happen: always EX)
        return _failed(f"no worker has reported in the last {HEARTBEAT_SECONDS} seconds")
    age = max(0, round(HEARTBEAT_SECONDS - remaining_ms / 1000))
    return _ok(last_seen_seconds_ago=age)


def readiness() -> dict[str, dict]:
    """Every check's result, in a fixed order."""
    redis_result, connection = check_redis()
    database = check_database()
    migrations = check_migrations() if database["ok"] else _failed("unknown: no database")
    return {
        "database": database,
        "redis": redis_result,
        "migrations": migrations,
        "worker": check_worker(connection),
    }


# --- routes ----------------------------------------------------------------------------------


def _answer(body: dict, ok: bool) -> Response:
    """JSON in the checks' own order (``jsonify`` would sort them), never cached."""
    return current_app.response_class(
        json.dumps(body) + "\n",
        status=200 if ok else 503,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (no database, no Redis)."""
    return _answer({"status": "ok"}, True)


@bp.get("/readyz")
def readyz() -> Response:
    """Ready for traffic: database, Redis, schema at head, a worker alive."""
    checks = readiness()
    ready = all(result["ok"] for result in checks.values())
    return _answer({"status": "ready" if ready else "unready", "checks": checks}, ready)
