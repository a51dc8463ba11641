"""Logging for operators (SPEC I7): request ids, opt-in JSON lines, an optional error tracker.

- Every request gets an id: the ``X-Request-ID`` a reverse proxy sent when it is a plain token
  (letters, digits, ``.``, ``_``, ``-``; 8 to 128 of them), otherwise a new one. It is answered
  in the ``X-Request-ID`` header, so a visitor's report, the proxy's log and ours meet.
- ``LOG_FORMAT=json`` writes one JSON object per line for every log record of the process
  (the app's, libraries', RQ's; gunicorn's own through ``deploy/gunicorn.conf.py``), with
  ``request_id`` inside a request and ``job_id`` inside a background job. The default,
  ``text``, is the readable one-line format a terminal wants.
- ``SENTRY_DSN`` sends unhandled errors and error-level log records to Sentry (or any service
  that speaks its protocol, e.g. GlitchTip). Nothing personal is sent (no cookies, IP
  addresses or user details) and every string of an event passes through the same
  ``secret_links.redact`` as the logs, so no link or API token leaves the process.

Both formats see records only after the record factory of ``app.secret_links`` rewrote them,
so a token never reaches a line in either.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from flask.wrappers import Response

from app.secret_links import redact

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,128}")


# --- request ids ----------------------------------------------------------------------------


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return None


def current_job_id() -> str | None:
    """The RQ job this thread is running, if any."""
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:  # outside a worker RQ may have nothing to say
        return None
    return job.id if job is not None else None


def _assign_request_id() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _answer_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


# --- JSON lines -----------------------------------------------------------------------------

# gunicorn's access-log atoms worth a field of their own (the whole line stays in "message").
_ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "B": "bytes", "M": "duration_ms"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the ids that apply."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is None and record.name == "gunicorn.access":
            request_id = _access_atom(record, "{x-request-id}o")
        if request_id:
            entry["request_id"] = request_id
        job_id = current_job_id()
        if job_id:
            entry["job_id"] = job_id
        if record.name == "gunicorn.access":
            for atom, name in _ACCESS_FIELDS.items():
                value = _access_atom(record, atom)
                if value not in (None, "-"):
                    entry[name] = int(value) if value.isdigit() else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # a traceback the redaction kept as text only
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_atom(record: logging.LogRecord, name: str) -> str | None:
    """One value of a gunicorn access record's atoms, redacted like everything else (the
    record factory dropped the atoms already if the line held a token)."""
    atoms = record.args if isinstance(record.args, dict) else None
    if not atoms or atoms.get(name) is None:
        return None
    return redact(str(atoms[name]))


def make_handler(log_format: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    return handler


def configure_logging(log_format: str) -> None:
    """The process's root handler in the chosen format (once: a second app in the same process
    keeps the first's handler, like ``logging.basicConfig``)."""
    logging.basicConfig(level=logging.INFO, handlers=[make_handler(log_format)])


# --- error tracker --------------------------------------------------------------------------


def scrub(value: Any) -> Any:
    """``value`` with every string in it (keys too) passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _before_send(event: dict, _hint: dict) -> dict:
    return scrub(event)


def _before_breadcrumb(crumb: dict, _hint: dict) -> dict:
    return scrub(crumb)


def init_error_tracker(app: Flask) -> None:
    """Start the Sentry client when ``SENTRY_DSN`` is set (once per process)."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    if sentry_sdk.get_client().is_active():
        return
    from app import __version__

    sentry_sdk.init(
        dsn=dsn,
        environment=app.config.get("ENV"),
        release=f"slotbook@{__version__}",
        integrations=[FlaskIntegration(), RqIntegration()],
        send_default_pii=False,  # no cookies, IP addresses or signed-in user
        include_local_variables=False,  # a frame's locals may hold a token or a password
        max_request_body_size="never",  # form posts carry passwords and contact details
        before_send=_before_send,
        before_breadcrumb=_before_breadcrumb,
        traces_sample_rate=0,
    )


def init_app(app: Flask) -> None:
    """Request ids, the log format and the error tracker for ``app``."""
    configure_logging(app.config.get("LOG_FORMAT", "text"))
    app.before_request(_assign_request_id)
    app.after_request(_answer_request_id)
    init_error_tracker(app)
