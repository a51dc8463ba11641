"""Bearer-token authentication for the API. Cookies are never consulted.

The API is exempt from CSRF protection *because* of this: a browser attaches cookies to a
forged cross-site request on its own, but it cannot attach an ``Authorization: Bearer``
header, so a request that authenticates only by that header cannot be forged that way.
Nothing here reads ``flask_login.current_user`` or the session.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from flask import g, request
from redis.exceptions import ResponseError
from sqlalchemy import or_, update

from app.accounts.models import ApiToken, User
from app.accounts.service import TokenHolder, api_token, token_use_is_stale
from app.api.errors import ApiError
from app.database import begin_write
from app.extensions import db, redis_client

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = {"api.openapi"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
REALM = 'Bearer realm="slotbook"'
INVALID = "The API token is invalid, revoked, or its user is disabled."


def _unauthorized(message: str, token_given: bool) -> ApiError:
    challenge = f'{REALM}, error="invalid_token"' if token_given else REALM
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": challenge})


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate() -> None:
    """Blueprint ``before_request``: set ``g.api_caller`` from the bearer token or refuse (401).

    Authenticating only reads. Writing requests arrive in their writer transaction (the
    app's ``before_request`` opened it, SQLite ``BEGIN IMMEDIATE``); reads stay plain
    reads, which on SQLite never wait for the write lock, however long a writer holds it.
    The token's use is noted in Redis (``note_token_use``), not in the database.
    """
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    token = _bearer_token()
    if token is None:
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.", False)
    holder = api_token(token)
    if holder is None:
        db.session.rollback()
        raise _unauthorized(INVALID, True)
    if token_use_is_stale(holder):
        note_token_use(holder.token_id)
    if request.method in WRITE_METHODS:
        begin_write()  # already the writer transaction: this only checks it
    g.api_caller = holder


# --- when was a token last used -----------------------------------------------------------
#
# Choice: a request notes its token's use in a Redis hash (one HSET, no database write), and
# the periodic job "api-token-uses" (``app.jobs``) writes the newest use of each token to
# ``api_tokens.last_used_at`` once a minute in one short transaction. So no API request,
# read or write, takes the database write lock to record a use, and read-only tokens still
# show when they were used. It is best effort: with Redis down a use goes unrecorded, which
# costs an admin nothing but a less precise "last used".

USES_HASH = "slotbook:api-token-uses"


def note_token_use(token_id: int) -> None:
    """Remember (in Redis) that a token was used now; never fails the request."""
    try:
        redis_client().hset(USES_HASH, str(token_id), f"{time.time():.3f}")
    except Exception as exc:  # Redis down or not configured: the request goes on
        log.debug("api: token use not noted: %s", type(exc).__name__)


def flush_token_uses() -> int:
    """Move the noted uses into ``last_used_at`` (never backwards); returns how many tokens.

    The hash is renamed first, so uses noted meanwhile land in a new hash for the next run.
    """
    client = redis_client()
    taking = f"{USES_HASH}:flushing:{uuid.uuid4().hex}"
    try:
        client.rename(USES_HASH, taking)
    except ResponseError:  # no such key: nobody used a token since the last run
        return 0
    client.expire(taking, 86400)  # gone by itself should the database write below fail
    uses = {int(k): float(v) for k, v in client.hgetall(taking).items()}
    begin_write()
    for token_id, stamp in uses.items():
        when = datetime.fromtimestamp(stamp, UTC)
        db.session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < when),
            )
            .values(last_used_at=when)
        )
    db.session.commit()
    client.delete(taking)
    return len(uses)


def api_caller() -> TokenHolder:
    """Who the request's token speaks for: their id, whether staff, their permissions."""
    return g.api_caller


def api_user() -> User:
    """The caller as a user, loaded on first use: a route that only checks permissions
    (availability) never needs the row, its role and the role's permissions as objects."""
    user = g.get("api_user")
    if user is None:
        user = db.session.get(User, g.api_caller.user_id)
        if user is None or not user.active:  # disabled since the token was checked
            raise _unauthorized(INVALID, True)
        g.api_user = user
    return user
