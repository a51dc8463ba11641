"""Sign-in throttling: failed sign-ins are counted per account and per client address.

- Only failures count, so people who sign in often are never slowed; a success clears the
  account's count (never the address's: one valid account must not reset a guesser's
  address).
- The account is the email as typed (normalised), whether or not it has an account, so the
  answer is the same for both: the limit tells a guesser nothing about who exists. It is
  stored hashed: people type passwords into the email field, and the limiter logs its keys.
- Over either limit every sign-in is refused, a correct password too, until the window
  passes: otherwise the refusal itself would confirm a guess.
- Moving windows ("the 6th failure within any 60 seconds"), on the app's rate-limit storage
  (Redis, shared by every web worker; memory in development without Redis).
- When the storage is unreachable sign-in works unthrottled, with a warning: an outage of
  Redis must not lock every member of staff out (passwords are still hashed and checked).

Limits come from ``SLOTBOOK_LIMIT_SIGN_IN_EMAIL`` and ``SLOTBOOK_LIMIT_SIGN_IN_IP``
(Flask-Limiter notation; several separated by ";").
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from app.accounts.service import normalise_email
from app.extensions import limiter

log = logging.getLogger(__name__)

STORAGE_ERRORS = (StorageError, RedisError, OSError)
Counter = tuple[RateLimitItem, tuple[str, ...]]


def _email_key(email: str) -> str:
    return "sign-in-email:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _address_key() -> str:
    """The client address (the proxy's X-Forwarded-For entry when ``SLOTBOOK_TRUSTED_PROXIES``
    is set: ``app.public.limits`` installs ProxyFix)."""
    return "sign-in-ip:" + (request.remote_addr or "unknown")


def _counters(email: str) -> list[Counter]:
    """Each limit with the key it counts under, the address's first."""
    config = current_app.config
    counters = [
        (item, (_address_key(),)) for item in parse_many(config["SLOTBOOK_LIMIT_SIGN_IN_IP"])
    ]
    address = normalise_email(email)
    if address:
        counters += [
            (item, (_email_key(address),))
            for item in parse_many(config["SLOTBOOK_LIMIT_SIGN_IN_EMAIL"])
        ]
    return counters


def _window() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(limiter.storage)


def _storage_down(consequence: str, exc: BaseException) -> None:
    log.warning("sign-in limit storage unreachable: %s (%s)", consequence, type(exc).__name__)


def wait_seconds(email: str) -> int:
    """Seconds until a sign-in for ``email`` from this address may be tried; 0 when now."""
    try:
        window = _window()
        resets = [
            window.get_window_stats(item, *keys).reset_time
            for item, keys in _counters(email)
            if not window.test(item, *keys)
        ]
    except STORAGE_ERRORS as exc:
        _storage_down("not throttled", exc)
        return 0
    return max(1, math.ceil(max(resets) - time.time())) if resets else 0


def record_failure(email: str) -> None:
    """Count one failed sign-in against the address and the typed account."""
    try:
        window = _window()
        for item, keys in _counters(email):
            window.hit(item, *keys)
    except STORAGE_ERRORS as exc:
        _storage_down("failure not counted", exc)


def record_success(email: str) -> None:
    """A person who finally got their password right starts again from zero."""
    address = normalise_email(email)
    try:
        window = _window()
        for item in parse_many(current_app.config["SLOTBOOK_LIMIT_SIGN_IN_EMAIL"]):
            window.clear(item, _email_key(address))
    except STORAGE_ERRORS as exc:
        _storage_down("count not cleared", exc)


def describe_wait(seconds: int) -> str:
    """Whole minutes, rounded up: "1 minute", "10 minutes"."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
