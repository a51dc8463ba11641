"""Personal calendar feeds (F1): the public feed address and the "Calendar feed" controls.

- ``GET /feeds/<token>.ics`` needs no sign-in: the token is the credential. Any token that
  opens nothing (unknown, regenerated away, or its owner deactivated) gets the same plain
  404, so the answer tells a guesser nothing. Rate-limited per feed (fail open, like the
  public slot queries: a feed read changes nothing).
- ``/me/feed`` (signed in): make the address, or regenerate it after a confirmation step.
  The new address is shown once, in the answer to the POST itself (never in a redirect,
  the session cookie or a flash message), with ``Cache-Control: no-store``.

Tokens never reach a log line, and the feed sends no Referer: ``app.secret_links`` does both
for every token route.
"""

from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from app.extensions import db, limiter
from app.htmx import render
from app.notifications import feeds
from app.public.limits import STORAGE_ERRORS

bp = Blueprint("feeds", __name__)
log = logging.getLogger(__name__)

DEFAULT_LIMIT = "20/minute"  # per feed; calendar apps poll every few minutes at most
CACHE_CONTROL = "private, max-age=300"
NOT_FOUND_BODY = "Not found\n"


# --- the feed ------------------------------------------------------------------------------


def _feed_limit() -> str:
    return current_app.config.get("SLOTBOOK_LIMIT_FEED") or DEFAULT_LIMIT


def _feed_key() -> str:
    """Per feed, by the token's hash: calendar services fetch many people's feeds from a few
    addresses, so a per-IP limit would throttle everyone behind Google."""
    from app.security import hash_token

    return "feed:" + hash_token((request.view_args or {}).get("token", ""))


def limit_feed_requests(view):
    """Over the limit: 429. Redis unreachable: served anyway, with a warning (fail open)."""
    limited = limiter.limit(_feed_limit, key_func=_feed_key, scope="feeds")(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return limited(*args, **kwargs)
        except STORAGE_ERRORS:
            log.warning("rate limit storage unreachable: serving a calendar feed unlimited")
            return view(*args, **kwargs)

    return wrapper


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _not_found() -> Response:
    response = Response(NOT_FOUND_BODY, 404, mimetype="text/plain")
    _private(response)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/feeds/<token>.ics")
@limit_feed_requests
def feed(token: str):
    user = feeds.user_for_token(token)
    if user is None:
        return _not_found()
    if request.if_none_match:  # the narrow ETag query: "nothing changed" stays cheap
        etag = feeds.current_etag(user)
        if request.if_none_match.contains(etag.strip('"')):
            response = _private(Response(status=304))
            response.headers["ETag"] = etag
            return response
    body, etag = feeds.answer(user)  # a kept body when this ETag was built before
    response = Response(body, mimetype="text/calendar")
    response.headers["ETag"] = etag
    response.headers["Content-Disposition"] = 'inline; filename="slotbook.ics"'
    return _private(response)


# --- the "Calendar feed" controls ----------------------------------------------------------


@bp.app_context_processor
def _feed_helpers() -> dict:
    """``calendar_feed()`` for the include on the calendars page: the signed-in person's feed
    row (hash and date only) or None. One small query, only when the section renders."""

    def calendar_feed():
        if not current_user.is_authenticated:
            return None
        return feeds.feed_of(current_user)

    return {"calendar_feed": calendar_feed}


def _section(status: int = 200, **context) -> Response:
    context.setdefault("feed_row", feeds.feed_of(current_user))
    return render("notifications/feed.html", "notifications/_feed.html", status, **context)


def _show_new_address() -> Response:
    token = feeds.rotate(current_user)
    db.session.commit()
    log.info("calendar feed address made for user %s", current_user.id)
    response = _section(new_feed_url=feeds.feed_url(token))
    response.headers["Cache-Control"] = "no-store"  # the page holds the secret address
    return response


@bp.get("/me/feed")
@login_required
def page():
    return _section()


@bp.post("/me/feed")
@login_required
def create():
    """Make the first address. With one already there, ask before replacing it."""
    if feeds.feed_of(current_user) is not None:
        return _section(confirm_regenerate=True)
    return _show_new_address()


@bp.get("/me/feed/regenerate")
@login_required
def regenerate_confirm():
    return _section(confirm_regenerate=True)


@bp.post("/me/feed/regenerate")
@login_required
def regenerate():
    return _show_new_address()
