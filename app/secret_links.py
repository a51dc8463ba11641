"""Secrets that travel in URLs: never in a log line, never in a ``Referer`` header.

Visitors' manage and confirm links, poll answer links, set-password links and personal
calendar feeds carry their credential in the path; API tokens travel in a header but can
still reach a log through a query string or an exception message. A log file handed to a
support desk, or a ``Referer`` sent to a third-party site, must not give any of them away.
This module is the one place that knows which URLs and token shapes are secret, and applies
two rules from that knowledge:

- Logs: one ``LogRecord`` factory, installed for the whole process, rewrites each record as
  it is created (message, arguments, traceback, stack), so every logger is covered: the
  app's, werkzeug's access log, gunicorn's access and error logs (``gunicorn.conf.py``),
  third-party libraries, and any handler added later (pytest's ``caplog`` included). A filter
  on a logger would only see records created on that very logger, and a filter on handlers
  would miss handlers added after start-up; that is why this is a factory.
- Responses: every page under a secret path, and every view that takes a ``token`` argument,
  answers with ``Referrer-Policy: no-referrer`` and, unless it says otherwise, is not stored
  by caches (``Cache-Control: no-store``).

Tokens are recognised twice over: by their place in a path (``/polls/answer/<anything>``),
and by their own shape anywhere (``new_token``: a readable prefix, ``_``, 43 URL-safe
characters), also when a client percent-encodes some of their characters.
"""

from __future__ import annotations

import copy
import logging
import re

from flask import Flask, request
from flask.wrappers import Response

REDACTED = "[redacted]"

# Paths whose next segment is a credential (manage, confirm, poll answer, set-password, feed).
SECRET_PATHS = ("book/manage", "book/confirm", "polls/answer", "set-password", "feeds")

# Prefixes ``app.security.new_token`` is given: "sb" API tokens (accounts/service.py), "sbm"
# manage and "sbc" confirm links (public/tokens.py), "sbp" poll links (polls/service.py),
# "sbpw" set-password links (accounts/passwords.py), "feed" calendar feeds (notifications/
# feeds.py). tests/security/test_log_redaction.py checks each issuer's prefix is listed.
TOKEN_PREFIXES = ("sbpw", "sbm", "sbc", "sbp", "sb", "feed")

# A real token has 43 characters after its prefix; 32 still catches a truncated one without
# catching long Python names such as "feed_section_in_the_browser" in a traceback.
MIN_TOKEN_BODY = 32

_ENCODED = r"%[0-9a-f]{2}"


def _char(c: str) -> str:
    """``c`` as it is, or percent-encoded ("f" or "%66")."""
    return f"(?:{re.escape(c)}|%{ord(c):02x})"


_TOKEN_SHAPE = re.compile(
    "(?:"
    + "|".join("".join(_char(c) for c in p) for p in sorted(TOKEN_PREFIXES, key=len, reverse=True))
    + ")"
    + _char("_")
    + rf"(?:[a-z0-9_-]|{_ENCODED}){{{MIN_TOKEN_BODY},}}",
    re.IGNORECASE,
)
_SECRET_SEGMENT = re.compile(
    "(/(?:" + "|".join(re.escape(p) for p in SECRET_PATHS) + r")/)[^/\s\"'?#<>]+"
)
_SECRET_REQUEST_PATH = re.compile("^/(?:" + "|".join(re.escape(p) for p in SECRET_PATHS) + ")/")


def redact(text: str) -> str:
    """``text`` with every link or API token in it replaced by ``[redacted]``."""
    text = _TOKEN_SHAPE.sub(REDACTED, text)
    return _SECRET_SEGMENT.sub(rf"\1{REDACTED}", text)


# --- logs ------------------------------------------------------------------------------------

_TRACEBACKS = logging.Formatter()


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite ``record`` in place so no token survives in what any handler prints.

    Only a record that holds a token is changed: its message is formatted and kept without
    arguments; a traceback holding one is kept as redacted text only (``exc_info`` is dropped,
    so no formatter can print the original exception again). Other records keep their
    arguments and exception for handlers that use them.
    """
    try:
        message = record.getMessage()
    except Exception:  # malformed arguments: logging reports those itself when it emits
        message = None
    if message is not None:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = _clean_message(record, clean)
    if record.exc_info and record.exc_info[1] is not None:
        text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_info, record.exc_text = None, clean
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def _clean_message(record: logging.LogRecord, clean: str) -> tuple[object, object]:
    """The record's new ``msg`` and ``args``: a mapping of arguments (gunicorn's access-log
    atoms, which ``LOG_FORMAT=json`` turns into fields) is kept with each value redacted, but
    only when it formats to exactly the redacted message; anything else becomes that text."""
    args = record.args
    if isinstance(args, dict) and args:
        kept = copy.copy(args)  # same dict type (gunicorn's answers "-" for a missing key)
        for key, value in args.items():
            if isinstance(value, str):
                dict.__setitem__(kept, key, redact(value))
        try:
            if str(record.msg) % kept == clean:
                return record.msg, kept
        except Exception:  # noqa: S110 - any doubt: keep the plain redacted text
            pass
    return clean, ()


class RedactTokens(logging.Filter):
    """The same rewrite as a filter, for handlers fed records that were made elsewhere
    (``logging.makeLogRecord`` from a socket or queue bypasses the record factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Make every record of this process pass through ``redact_record``. Idempotent, and it
    wraps (never replaces) a factory someone else installed."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_tokens", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# --- responses -------------------------------------------------------------------------------


def carries_secret() -> bool:
    """Whether the current request's URL holds a credential."""
    return "token" in (request.view_args or {}) or bool(_SECRET_REQUEST_PATH.match(request.path))


def _private_headers(response: Response) -> Response:
    """Secret URLs are never sent on as a Referer, nor kept by a cache unless the view chose
    (the feed's ``private, max-age=300``)."""
    if carries_secret():
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install both rules for ``app``: the log rewrite and the response headers."""
    install_log_redaction()
    app.after_request(_private_headers)
