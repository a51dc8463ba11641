"""A real multi-process server for races: gunicorn with 4 sync workers, started once per module.

In-process test clients run one request at a time, so they cannot show a lost update. Here
each worker is its own process with its own connection pool, exactly as deployed, on the
database the run uses (a SQLite file, or PostgreSQL when ``TEST_DATABASE_URL`` is set).
The test process keeps its own app on the same database to arrange rows and read results.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app import create_app
from app.config import PROJECT_ROOT, TestConfig
from tests.conftest import CSRF_RE, PASSWORD, TEST_DATABASE_URL, Factory, _pg, free_port

WORKERS = 4
START_TIMEOUT = 60
UNLIMITED = "100000/minute"  # the rate limits (S6) are Redis's job; these tests race the database


@pytest.fixture(scope="module")
def live_database_url(_template_db, tmp_path_factory) -> str:
    """One migrated, empty database for the module (the server cannot follow per-test copies)."""
    if TEST_DATABASE_URL:
        engine = create_engine(_pg(TEST_DATABASE_URL))
        with engine.begin() as conn:
            tables = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("live") / "slotbook.db"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def live_app(live_database_url, redis_url, tmp_path_factory):
    """The test process's own app on the server's database (arranging and checking)."""
    app = create_app(TestConfig(live_database_url, redis_url))
    app.config["MAIL_SERVER"] = None
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path_factory.mktemp("mail"))
    from app.accounts.service import ensure_roles
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        ensure_roles()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def live_factory(live_app) -> Factory:
    return Factory(live_app)


@dataclass
class LiveServer:
    """gunicorn serving ``wsgi:app``; its log is kept for failure messages."""

    url: str
    process: subprocess.Popen
    log: Path
    sessions: list = field(default_factory=list)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def session(self) -> requests.Session:
        session = requests.Session()
        self.sessions.append(session)
        return session

    def csrf(self, session: requests.Session, path: str) -> str:
        page = session.get(self.url + path, timeout=30)
        assert page.status_code == 200, (path, page.status_code)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, email: str) -> requests.Session:
        session = self.session()
        token = self.csrf(session, "/login")
        response = session.post(
            self.url + "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text[:500]
        return session


def _server_env(app, database_url: str, redis_url: str, directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOTBOOK_", "FLASK_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "SECRET_KEY", "MAIL_SERVER"):
        env.pop(name, None)
    env.update(
        SLOTBOOK_ENV="testing",
        SLOTBOOK_INSTANCE_DIR=str(directory),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=app.config["SECRET_KEY"],
        SLOTBOOK_ENCRYPTION_KEYS=app.config["SLOTBOOK_ENCRYPTION_KEYS"],
        MAIL_OUTBOX_DIR=str(directory / "mail"),
        SLOTBOOK_LIMIT_SLOT_QUERIES=UNLIMITED,
        SLOTBOOK_LIMIT_BOOKING_POSTS_IP=UNLIMITED,
        SLOTBOOK_LIMIT_BOOKING_POSTS_CONTACT=UNLIMITED,
    )
    return env


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if requests.get(url + "/login", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"gunicorn did not answer within {START_TIMEOUT}s:\n{log.read_text()[-4000:]}")
    # every worker booted (each logs its pid), so the races below really span processes
    while len(re.findall(r"Booting worker with pid", log.read_text())) < WORKERS:
        if time.monotonic() > deadline:
            pytest.fail(f"not all workers booted:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live_server(live_app, live_database_url, redis_url, tmp_path_factory) -> LiveServer:
    directory = tmp_path_factory.mktemp("gunicorn")
    log = directory / "gunicorn.log"
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--no-control-socket",  # one fixed path per user: parallel servers would clash
                "wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=_server_env(live_app, live_database_url, redis_url, directory),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(server.url, process, log)
        yield server
    finally:
        for session in server.sessions:
            session.close()
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def race(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls in threads released together; every response, in the calls' order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        barrier.wait(timeout=30)
        try:
            results[index] = call()
        except Exception as exc:  # reported by the test, never swallowed
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(t.is_alive() for t in threads), "a request hung"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def copy_session(server: LiveServer, session: requests.Session) -> requests.Session:
    """A session with the same cookies and headers (sessions are not shared between threads)."""
    clone = server.session()
    clone.cookies.update(session.cookies)
    clone.headers.update(session.headers)
    return clone
