"""Operators' logs (SPEC I7): request ids, ``LOG_FORMAT=json`` and ``SENTRY_DSN``.

The JSON and error-tracker checks run in child processes: logging's root handler and the
Sentry client are per process, and the test run's own must stay as they are.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq import Queue

from app.config import PROJECT_ROOT
from app.security import new_token
from tests.conftest import free_port


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_proxys_request_id_is_kept_and_a_hostile_one_replaced(client):
    offered = "nginx-7f3a9c0e11d2"
    assert (
        client.get("/healthz", headers={"X-Request-ID": offered}).headers["X-Request-ID"] == offered
    )
    for hostile in ["a b c d e f g h", "short", "x" * 200, "abc\u00e9defghij", "id;rm -rf /"]:
        answered = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert answered != hostile and len(answered) == 32


def _child_env(app, database_url: str, redis_url: str, tmp_path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOTBOOK_", "SENTRY_"))}
    env.update(
        SLOTBOOK_ENV="testing",
        SLOTBOOK_INSTANCE_DIR=str(tmp_path / "instance"),
        SLOTBOOK_ENCRYPTION_KEYS=app.config["SLOTBOOK_ENCRYPTION_KEYS"],
        SECRET_KEY=app.config["SECRET_KEY"],
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        **extra,
    )
    return env


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _json_lines(stream: str) -> list[dict]:
    lines = [line for line in stream.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


LINK = new_token("sbm")
FEED = new_token("feed")

REQUEST_SCRIPT = textwrap.dedent(
    f"""
    import logging
    from app import create_app

    app = create_app()
    client = app.test_client()
    client.get("/readyz", headers={{"X-Request-ID": "probe-request-0001"}})
    log = logging.getLogger("slotbook.probe")
    log.warning("visitor opened /book/manage/%s", "{LINK}")
    try:
        raise RuntimeError("feed /feeds/{FEED}.ics failed")
    except RuntimeError:
        log.exception("it broke")
    """
)


def test_json_logs_one_object_per_line_with_request_id_and_no_token(app, database_url, tmp_path):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # readyz logs that Redis does not answer
    env = _child_env(app, database_url, nowhere, tmp_path, LOG_FORMAT="json")
    done = _run([sys.executable, "-c", REQUEST_SCRIPT], env)
    entries = _json_lines(done.stderr)
    assert LINK not in done.stderr and FEED not in done.stderr

    in_request = [e for e in entries if e["message"].startswith("readyz: Redis did not answer")]
    assert in_request and in_request[0]["request_id"] == "probe-request-0001"
    assert in_request[0]["level"] == "WARNING" and in_request[0]["logger"] == "app.health"

    link = next(e for e in entries if e["message"].startswith("visitor opened"))
    assert link["message"] == "visitor opened /book/manage/[redacted]"
    assert "request_id" not in link and "job_id" not in link
    broken = next(e for e in entries if e["message"] == "it broke")
    assert "RuntimeError: feed /feeds/[redacted]" in broken["exception"]


def test_text_logs_stay_the_default(app, database_url, tmp_path):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = _child_env(app, database_url, nowhere, tmp_path)
    done = _run([sys.executable, "-c", REQUEST_SCRIPT], env)
    assert "WARNING slotbook.probe visitor opened /book/manage/[redacted]" in done.stderr
    assert LINK not in done.stderr and not done.stderr.lstrip().startswith("{")


def test_json_logs_of_the_worker_carry_the_job_id(app, database_url, redis, redis_url, tmp_path):
    Queue("default", connection=redis).enqueue(
        "tests.ops.log_jobs.log_from_a_job", "hello", job_id="probe-job-0001"
    )
    env = _child_env(app, database_url, redis_url, tmp_path, LOG_FORMAT="json")
    done = _run([sys.executable, "worker.py", "--burst"], env)
    entries = _json_lines(done.stderr + done.stdout)
    said = [e for e in entries if e["message"] == "job says hello"]
    assert said and said[0]["job_id"] == "probe-job-0001", entries


def test_a_bad_log_format_is_refused(monkeypatch, tmp_path):
    from app.config import Config, ConfigError

    monkeypatch.setenv("SLOTBOOK_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
        Config()


# --- the error tracker ----------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    """Sentry's ingest endpoint as far as a client needs it: store each envelope, answer 200."""

    received: list[bytes]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)
    server.server_close()


SENTRY_SCRIPT = textwrap.dedent(
    f"""
    import sentry_sdk
    from app import create_app

    app = create_app()

    @app.get("/probe-error")
    def probe_error():
        raise RuntimeError("poll /polls/answer/{LINK} failed")

    client = app.test_client()
    client.set_cookie("session", "cookie-value-never-sent")
    answer = client.get("/probe-error?next=/feeds/{FEED}.ics")
    assert answer.status_code == 500, answer.status_code
    sentry_sdk.flush(10)
    """
)


def test_sentry_dsn_reports_errors_without_tokens_or_cookies(
    app, database_url, redis_url, tmp_path, collector
):
    dsn = f"http://publickey@127.0.0.1:{collector.server_port}/42"
    env = _child_env(app, database_url, redis_url, tmp_path, SENTRY_DSN=dsn)
    _run([sys.executable, "-c", SENTRY_SCRIPT], env)

    bodies = [body for path, body in collector.received if path == "/api/42/envelope/"]
    assert bodies, collector.received
    text = b"\n".join(bodies).decode()
    assert "RuntimeError" in text and "/polls/answer/[redacted]" in text
    assert LINK not in text and FEED not in text
    assert "cookie-value-never-sent" not in text


def test_access_atoms_survive_redaction_redacted_so_json_keeps_its_fields():
    """gunicorn logs its access line as a format and a dict of atoms; a line with a token
    keeps the atoms, each redacted, so the JSON line still has path, status and request id."""
    import logging

    from app.logs import JsonFormatter
    from app.secret_links import install_log_redaction

    install_log_redaction()
    atoms = {
        "r": f"GET /book/manage/{LINK} HTTP/1.1",
        "U": f"/book/manage/{LINK}",
        "m": "GET",
        "s": "200",
        "{x-request-id}o": "req-000000001",
    }
    record = logging.getLogger("gunicorn.access").makeRecord(
        "gunicorn.access",
        logging.INFO,
        __file__,
        1,
        '"%(r)s" %(s)s %({x-request-id}o)s',
        (atoms,),
        None,
    )
    assert LINK not in record.getMessage()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == '"GET /book/manage/[redacted] HTTP/1.1" 200 req-000000001'
    assert line["path"] == "/book/manage/[redacted]"
    assert (line["status"], line["request_id"]) == (200, "req-000000001")

    # Any logger's dict of arguments is redacted the same way.
    odd = logging.getLogger("x").makeRecord(
        "x", logging.INFO, __file__, 1, "%(a)s", ({"a": f"/feeds/{FEED}", "b": 1},), None
    )
    assert odd.getMessage() == "/feeds/[redacted]"
