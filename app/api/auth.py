"""Bearer-token authentication for the API. Cookies are never consulted.

The API is exempt from CSRF protection *because* of this: a browser attaches cookies to a
forged cross-site request on its own, but it cannot attach an ``Authorization: Bearer``
header, so a request that authenticates only by that header cannot be forged that way.
Nothing here reads ``flask_login.current_user`` or the session.
"""

from __future__ import annotations

from flask import g, request

from app.accounts.models import User
from app.accounts.service import api_token, token_use_is_stale
from app.api.errors import ApiError
from app.database import begin_write, utcnow
from app.extensions import db

PUBLIC_ENDPOINTS = {"api.openapi"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
REALM = 'Bearer realm="slotbook"'


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
    """Blueprint ``before_request``: set ``g.api_user`` from the bearer token or refuse (401).

    The token's ``last_used_at`` is recorded at most once a minute, in its own short write
    transaction (so it counts even when the request is refused later); other reads stay
    reads, which on SQLite means they never wait for the write lock. Writing requests then
    open their main transaction as writers again (SQLite ``BEGIN IMMEDIATE``, see
    ``app.database``) before anything else reads, as the app's own ``before_request`` did.
    """
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    token = _bearer_token()
    if token is None:
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.", False)
    row = api_token(token)
    if row is None:
        db.session.rollback()
        raise _unauthorized("The API token is invalid, revoked, or its user is disabled.", True)
    if token_use_is_stale(row):
        db.session.rollback()  # a reader cannot safely become a writer on SQLite: start over
        begin_write()
        row = api_token(token)
        if row is not None:
            row.last_used_at = utcnow()
        db.session.commit()
        if row is None:
            raise _unauthorized("The API token was revoked just now.", True)
    user = row.user
    if request.method in WRITE_METHODS:
        begin_write()  # still the writer transaction, or a new one after recording the use
    g.api_user = user


def api_user() -> User:
    return g.api_user
