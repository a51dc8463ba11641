"""No token of any kind in any log (issue 08, acceptance 6): the app's log, werkzeug's access
log, error logs with their tracebacks, and gunicorn's access and error logs as configured by
``gunicorn.conf.py``. Faults are real: the table a token route reads is renamed away."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import PROJECT_ROOT
from tests.security.conftest import Links

API_PATH = "/api/v1/booking-types"


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        answer.close()
        return answer.code


@contextmanager
def _table_missing(app, table: str) -> Iterator[None]:
    """A real fault inside a token route: the table it reads is gone while the block runs."""
    from app.database import begin_write
    from app.extensions import db

    def rename(old: str, new: str) -> None:
        with app.app_context():
            begin_write()
            db.session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
            db.session.commit()

    rename(table, f"{table}_away")
    try:
        yield
    finally:
        rename(f"{table}_away", table)


def _visit_everything(base: str, links: Links) -> dict[str, int]:
    """Every token page, the API with its token (as it should be sent, and misplaced in a
    query string), each with a Referer that holds another token."""
    referer = {"Referer": f"{base}/polls/answer/{links.poll}"}
    statuses = {name: _get(base + page, referer) for name, page in links.pages().items()}
    statuses["api"] = _get(base + API_PATH, {"Authorization": f"Bearer {links.api}"})
    statuses["api in query"] = _get(f"{base}{API_PATH}?token={links.api}")
    return statuses


def _wait_for(caplog, words: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not any(words in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"nothing logged {words!r}"
        time.sleep(0.05)


def _leaks(text_: str, links: Links) -> list[str]:
    """Each token kind found in ``text_``, whole or by its random part."""
    return [
        kind
        for kind, token in links.tokens().items()
        if token in text_ or token.split("_", 1)[1] in text_
    ]


def _everything_logged(caplog) -> str:
    """The formatted output plus each record's message, traceback and stack, as any handler
    could print them."""
    formatter = logging.Formatter()
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), record.exc_text or "", record.stack_info or ""]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def test_no_token_of_any_kind_reaches_any_log(app, links, live_server, caplog):
    """Manage, confirm, poll, set-password, feed and API tokens, used through werkzeug's
    server, with three token routes failing (Flask's error log, then werkzeug's): every
    line is logged, with "[redacted]" where the token was."""
    caplog.set_level(logging.DEBUG)

    statuses = _visit_everything(live_server, links)
    assert statuses["api"] == 200 and statuses["api in query"] == 401
    assert all(statuses[name] == 200 for name in links.pages()), statuses

    app.config["PROPAGATE_EXCEPTIONS"] = False  # Flask logs "Exception on <path>" itself
    with _table_missing(app, "poll_invitees"):
        assert _get(f"{live_server}/polls/answer/{links.poll}") == 500
    with _table_missing(app, "public_link_tokens"):
        assert _get(f"{live_server}/book/manage/{links.manage}") == 500
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the error reaches werkzeug, which logs it
    with _table_missing(app, "password_tokens"):
        assert _get(f"{live_server}/set-password/{links.set_password}") == 500
        _wait_for(caplog, "Error on request")  # werkzeug logs it after sending the 500

    logged = _everything_logged(caplog)
    assert not _leaks(logged, links)
    for path in (
        '"GET /book/manage/[redacted] HTTP/1.1" 200',
        '"GET /book/manage/[redacted]/cancel HTTP/1.1" 200',
        '"GET /book/confirm/[redacted] HTTP/1.1" 200',
        '"GET /polls/answer/[redacted] HTTP/1.1" 200',
        '"GET /set-password/[redacted] HTTP/1.1" 200',
        '"GET /feeds/[redacted] HTTP/1.1" 200',
        f'"GET {API_PATH}?token=[redacted] HTTP/1.1" 401',
        "Exception on /polls/answer/[redacted] [GET]",
        "Exception on /book/manage/[redacted] [GET]",
    ):
        assert path in logged, path
    assert "Error on request" in logged and "FROM password_tokens" in logged


def test_a_token_in_an_exception_or_argument_is_redacted(app, links, caplog):
    """A token inside an exception's message, a log argument or a stack is rewritten too, on
    any logger: the traceback is kept as redacted text."""
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("some.library")
    try:
        raise LookupError(f"no invitee for {links.poll!r}")
    except LookupError as exc:
        log.exception("answering failed")
        log.warning("request failed: %s", exc)
    log.info("tokens %(a)s %(b)s", {"a": links.api, "b": links.set_password}, stack_info=True)
    logging.getLogger().error("feed %s", f"/%66eeds/{links.feed}.ics")

    logged = _everything_logged(caplog)
    assert not _leaks(logged, links)
    assert "LookupError: no invitee for '[redacted]'" in logged
    assert "request failed: no invitee for '[redacted]'" in logged
    assert "tokens [redacted] [redacted]" in logged


def test_every_issuer_prefix_is_recognised():
    """Each module that issues tokens uses a prefix the redaction knows: a new token kind
    with a new prefix fails here until it is listed."""
    from app.accounts import passwords
    from app.notifications import feeds
    from app.polls import service as polls
    from app.public.tokens import Purpose
    from app.secret_links import TOKEN_PREFIXES, redact
    from app.security import new_token

    issued = {"sb", passwords.TOKEN_PREFIX, feeds.TOKEN_PREFIX, polls.TOKEN_PREFIX}
    issued |= {f"sb{p.value[0]}" for p in Purpose}
    assert issued <= set(TOKEN_PREFIXES)
    for prefix in issued:
        token = new_token(prefix)
        assert redact(f"x {token} y") == "x [redacted] y"


def test_every_token_route_is_a_secret_path(app):
    """Every route that takes a token lies under a path the log rewrite masks, so even a
    malformed token (not in a token's shape) never shows."""
    from app.secret_links import redact

    rules = [r for r in app.url_map.iter_rules() if "token" in r.arguments]
    assert len(rules) >= 7
    for rule in rules:
        path = rule.rule.replace("<token>", "not-a-token-shape")
        assert "not-a-token-shape" not in redact(f'"GET {path} HTTP/1.1"'), rule.rule


# --- gunicorn ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(app, tmp_path) -> Iterator[tuple[str, Path, Path]]:
    """gunicorn started as README says (its config read from the project folder), serving
    the test's database and Redis; yields its address and its stdout and stderr files."""
    port = _free_port()
    out, err = tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"
    env = dict(
        os.environ,
        SLOTBOOK_ENV="testing",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
    )
    env.pop("GUNICORN_CMD_ARGS", None)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", out, err
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_gunicorn_access_and_error_logs_hold_no_token(app, links, gunicorn):
    """Under gunicorn.conf.py the access log (path, query and Referer) and the error log
    (a token route that fails) show "[redacted]" for every token."""
    base, out, err = gunicorn
    statuses = _visit_everything(base, links)
    assert all(statuses[name] == 200 for name in links.pages()), statuses
    with _table_missing(app, "poll_invitees"):
        assert _get(f"{base}/polls/answer/{links.poll}") == 500
    deadline = time.monotonic() + 10  # a request's access line is written after its answer
    while '/polls/answer/[redacted] HTTP/1.1" 500' not in out.read_text():
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)

    access, errors = out.read_text(), err.read_text()
    assert not _leaks(access + errors, links)
    assert '"GET /polls/answer/[redacted] HTTP/1.1" 200' in access
    assert '"GET /feeds/[redacted] HTTP/1.1" 200' in access
    assert f'"GET {API_PATH}?token=[redacted] HTTP/1.1" 401' in access
    assert '"http://127.0.0.1' in access and '/polls/answer/[redacted]"' in access  # Referer
    assert "Exception on /polls/answer/[redacted] [GET]" in errors
