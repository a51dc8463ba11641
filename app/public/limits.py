"""Abuse limits for the public pages (S6): Flask-Limiter on Redis.

Two decorators for the public blueprint:

- ``limit_slot_queries``: per IP. Reading slots changes nothing, so when Redis is unreachable
  the query is served anyway (fail open) and a warning is logged.
- ``limit_booking_posts``: per IP and per contact (email, else phone, read from the form), on
  POST only. When Redis is unreachable the post is refused with a 503 page and the view never
  runs (fail closed): an outage must not turn into "unlimited bookings".

Nothing else is limited: the staff app and the API have no limits (``default_limits`` is
empty). Over a limit the visitor gets a 429 page with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from functools import wraps

from flask import Flask, current_app, make_response, render_template, request
from flask_limiter.errors import RateLimitExceeded
from limits.errors import StorageError
from redis.exceptions import RedisError
from werkzeug.middleware.proxy_fix import ProxyFix

from app.extensions import limiter

log = logging.getLogger(__name__)

STORAGE_ERRORS = (StorageError, RedisError, ConnectionError, TimeoutError, OSError)


def init_limits(app: Flask) -> None:
    """Point the limiter at this app's Redis and register the 429 page."""
    config = app.config
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "memory://")
    config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {"wrap_exceptions": True, "socket_connect_timeout": 1, "socket_timeout": 1},
    )
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", False)
    hops = int(config.get("SLOTBOOK_TRUSTED_PROXIES") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc):
        retry = _retry_after()
        response = make_response(
            render_template(
                "errors/page.html",
                code=429,
                title="Too many requests",
                message=(
                    "You have made too many requests in a short time. "
                    f"Please try again in {_human(retry)}."
                ),
            ),
            429,
        )
        response.headers["Retry-After"] = str(retry)
        return response


def _retry_after() -> int:
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


# --- keys ----------------------------------------------------------------------------------


def ip_key() -> str:
    """The client address: the peer, or the X-Forwarded-For entry of the last trusted proxy
    when ``SLOTBOOK_TRUSTED_PROXIES`` is set (ProxyFix)."""
    return request.remote_addr or "unknown"


def contact_key() -> str:
    """The contact a booking post names: its email (lower case), else its phone digits."""
    email = (request.form.get("email") or "").strip().lower()
    if email:
        return f"email:{email}"
    digits = re.sub(r"\D", "", request.form.get("phone") or "")
    return f"phone:{digits}" if digits else ""


def _no_contact() -> bool:
    return contact_key() == ""


def _slot_limit() -> str:
    return current_app.config["SLOTBOOK_LIMIT_SLOT_QUERIES"]


def _post_ip_limit() -> str:
    return current_app.config["SLOTBOOK_LIMIT_BOOKING_POSTS_IP"]


def _post_contact_limit() -> str:
    return current_app.config["SLOTBOOK_LIMIT_BOOKING_POSTS_CONTACT"]


# --- decorators ----------------------------------------------------------------------------


def _storage_ok() -> bool:
    try:
        return bool(limiter.storage and limiter.storage.check())
    except STORAGE_ERRORS:
        return False


def paused_response():
    """503: Redis is unreachable, so a booking post cannot be counted and is refused."""
    response = make_response(
        render_template(
            "errors/page.html",
            code=503,
            title="Bookings are paused",
            message="Bookings are paused for a moment. Please try again shortly.",
        ),
        503,
    )
    response.headers["Retry-After"] = "30"
    return response


def limit_slot_queries(view):
    """Per-IP limit on slot queries; fails open (logged) when Redis is unreachable."""
    limited = limiter.limit(_slot_limit, key_func=ip_key, scope="slot-queries")(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not _storage_ok():
            log.warning("rate limit storage unreachable: serving slot query unlimited")
            return view(*args, **kwargs)
        try:
            return limited(*args, **kwargs)
        except StorageError:
            log.warning("rate limit storage failed: serving slot query unlimited")
            return view(*args, **kwargs)

    return wrapper


def limit_booking_posts(view):
    """Per-IP and per-contact limits on POSTs; refuses (503) when Redis is unreachable."""
    limited = limiter.limit(
        _post_ip_limit, key_func=ip_key, methods=["POST"], scope="booking-posts-ip"
    )(
        limiter.limit(
            _post_contact_limit,
            key_func=contact_key,
            methods=["POST"],
            exempt_when=_no_contact,
            scope="booking-posts-contact",
        )(view)
    )

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        if not _storage_ok():
            log.warning("rate limit storage unreachable: booking post refused")
            return paused_response()
        try:
            return limited(*args, **kwargs)
        except StorageError:
            log.warning("rate limit storage failed: booking post refused")
            from app.extensions import db

            db.session.rollback()
            return paused_response()

    return wrapper
