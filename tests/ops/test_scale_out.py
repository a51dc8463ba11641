"""Slotbook on "two hosts" (issue [11], acceptance 4): two web processes and two workers on one
database and one Redis, as docs/deploy.md lays them out.

Two gunicorn masters (started with ``deploy/gunicorn.conf.py``, in production mode) and two
``worker.py`` processes share the run's database (SQLite, or PostgreSQL with
``TEST_DATABASE_URL``) and a private ``redis-server`` this module can stop. Bookings are made
through both webs; every outbox row is delivered exactly once (to a local SMTP server), each
periodic tick runs once across both workers, and ``/readyz`` on both webs turns unready when
Redis stops and ready again when it returns, after which a new booking is still delivered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from app import config as app_config
from app import create_app
from app.config import PROJECT_ROOT
from app.extensions import db
from app.jobs import SCHEDULE
from tests.api.conftest import OFFICE, london, winter_monday
from tests.conftest import TEST_DATABASE_URL, Factory, RedisServer, _pg, free_port
from tests.notifications.conftest import SmtpServer

pytestmark = pytest.mark.db

WAIT = 120  # seconds: the bound of every wait below
STRONG_SECRET = "scale-out-" + "Zx9-Qw3_Lm7Pt2Rv5Ys8" * 2


@dataclass
class Process:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} ---\n" + "\n".join(text)


@dataclass
class Site:
    app: object
    redis: RedisServer
    smtp: SmtpServer
    webs: list[str]
    processes: list[Process]
    token: str
    world: dict

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def alive(self) -> None:
        dead = [p for p in self.processes if p.process.poll() is not None]
        assert not dead, self.logs()


def _wait(what: str, condition, site: Site | None = None, bound: float = WAIT) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if site is not None:
            site.alive()
        assert time.monotonic() < deadline, f"{what} within {bound}s\n" + (
            site.logs() if site else ""
        )
        time.sleep(0.2)


# --- the site ------------------------------------------------------------------------------


def _database(template_db: str, directory: Path) -> str:
    """The module's own migrated, empty database (the processes cannot follow per-test ones)."""
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
    import shutil

    path = directory / "slotbook.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


def _world(app) -> tuple[dict, str]:
    """A manager with an API token, an agent with office hours in a group, a learner, and a
    one-hour type bookable from the group."""
    from app.accounts.hours import set_weekly_hours
    from app.accounts.models import Group, User
    from app.accounts.service import create_api_token, ensure_roles
    from app.bookings.models import AvailabilitySource
    from app.database import begin_write

    with app.app_context():
        begin_write()
        ensure_roles()
        db.session.commit()
    factory = Factory(app)
    manager = factory.user("booking-manager", email="bm@example.test")
    agent = factory.user("agent", email="ada@example.test")
    learner = factory.user("learner", email="lee@example.test")
    with app.app_context():
        begin_write()
        set_weekly_hours(db.session.get(User, agent.id), OFFICE)
        group = Group(slug="desk", name="Desk")
        group.members = [db.session.get(User, agent.id)]
        db.session.add(group)
        db.session.flush()
        group_id = group.id
        token = create_api_token(db.session.get(User, manager.id), "scale-out")
        db.session.commit()
    factory.booking_type(
        slug="review",
        name="Review",
        availability_source=AvailabilitySource.GROUP,
        availability_group_id=group_id,
        horizon_days=400,
    )
    return {"agent": agent.id, "learner": learner.id}, token


def _env(app, database_url: str, redis: RedisServer, smtp: SmtpServer, directory: Path) -> dict:
    """Production settings, as on a real host: each process gets them from its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOTBOOK_", "FLASK_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    env.update(
        SLOTBOOK_ENV="production",
        SLOTBOOK_INSTANCE_DIR=str(directory / "instance"),
        DATABASE_URL=database_url,
        REDIS_URL=redis.url,
        SECRET_KEY=STRONG_SECRET,
        SLOTBOOK_ENCRYPTION_KEYS=app.config["SLOTBOOK_ENCRYPTION_KEYS"],
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_USE_TLS="0",
        MAIL_USE_SSL="0",
        LOG_FORMAT="json",
        WEB_CONCURRENCY="1",  # one sync worker per web process: two webs on two cores
    )
    return env


def _spawn(name: str, args: list[str], env: dict, directory: Path) -> Process:
    log = directory / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, process, log)


def _stop(process: Process) -> None:
    if process.process.poll() is None:
        process.process.send_signal(signal.SIGTERM)
        try:
            process.process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.process.pid, signal.SIGKILL)
            process.process.wait(10)


@pytest.fixture(scope="module")
def site(_template_db, tmp_path_factory):
    directory = tmp_path_factory.mktemp("scale-out")
    redis = RedisServer(directory)
    redis.start()
    smtp = SmtpServer()
    smtp.start()
    database_url = _database(_template_db, directory)
    app = create_app(app_config.TestConfig(database_url, redis.url))
    world, token = _world(app)
    env = _env(app, database_url, redis, smtp, directory)
    processes: list[Process] = []
    try:
        webs = []
        for n in (1, 2):
            port = free_port()
            gunicorn = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
            gunicorn += ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
            processes.append(_spawn(f"web{n}", gunicorn, env, directory))
            webs.append(f"http://127.0.0.1:{port}")
        for n in (1, 2):
            processes.append(_spawn(f"worker{n}", [sys.executable, "worker.py"], env, directory))
        built = Site(app, redis, smtp, webs, processes, token, world)
        for web in webs:
            _wait(f"{web}/healthz answers", lambda web=web: _status(f"{web}/healthz") == 200, built)
        yield built
    finally:
        for process in processes:
            _stop(process)
        smtp.stop()
        redis.stop()
        with app.app_context():
            db.engine.dispose()


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


# --- reading the outcome -------------------------------------------------------------------


def _outbox(app) -> list[tuple]:
    from app.outbox import OutboxMessage

    with app.app_context():
        rows = db.session.execute(
            select(
                OutboxMessage.id, OutboxMessage.kind, OutboxMessage.status, OutboxMessage.attempts
            )
        ).all()
        db.session.rollback()
    return [tuple(row) for row in rows]


def _email_rows(app) -> int:
    from app.outbox import OutboxMessage

    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "notify.email")
        )
        db.session.rollback()
    return count


def _book(site: Site, web: str, start) -> int:
    response = requests.post(
        f"{web}/api/v1/bookings",
        json={
            "booking_type": "review",
            "start": start.isoformat(),
            "people": [site.world["agent"]],
            "learner": site.world["learner"],
            "location_mode": "remote",
            "location_detail": "https://meet.example.test/room",
        },
        headers={"Authorization": f"Bearer {site.token}"},
        timeout=60,
    )
    assert response.status_code == 201, (response.status_code, response.text[:500], site.logs())
    return response.json()["id"]


def _all_delivered(site: Site) -> bool:
    rows = _outbox(site.app)
    return bool(rows) and all(status == "done" for _, _, status, _ in rows)


def _started_jobs(site: Site) -> Counter:
    """How many times each job id was started, over both workers' JSON logs."""
    started: Counter = Counter()
    for process in site.processes:
        if not process.name.startswith("worker"):
            continue
        for line in process.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            match = re.search(r"\((periodic-[\w-]+|outbox-\d+)\)$", entry["message"])
            if entry["logger"] == "rq.worker" and match and "Job OK" not in entry["message"]:
                started[match.group(1)] += 1
    return started


def _access_line(site: Site, request_id: str) -> dict | None:
    for line in site.processes[0].log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["logger"] == "gunicorn.access" and entry.get("request_id") == request_id:
                return entry
    return None


# --- the test ------------------------------------------------------------------------------


def test_two_webs_and_two_workers_share_one_database_and_redis(site):
    day = winter_monday()
    starts = [london(day + timedelta(days=d), h) for d in range(2) for h in (9, 11, 14)]
    ids = [_book(site, site.webs[i % 2], start) for i, start in enumerate(starts)]
    assert len(set(ids)) == len(starts)

    # Every outbox row delivered, once: one claim each, one mail per email row.
    _wait("every outbox row delivered", lambda: _all_delivered(site), site)
    rows = _outbox(site.app)
    assert {attempts for *_, attempts in rows} == {1}, rows
    emails = _email_rows(site.app)
    assert emails >= len(starts)
    _wait("every mail received", lambda: len(site.smtp.messages) >= emails, site)
    received = site.smtp.messages
    assert len(received) == emails, (len(received), emails)
    assert len({m.message["Message-ID"] for m in received}) == emails

    # Each periodic job's tick was claimed by one worker and run once, in total.
    names = [p.name for p in SCHEDULE]
    _wait(
        "every periodic job's first tick ran",
        lambda: all(
            any(job.startswith(f"periodic-{n}-") for job in _started_jobs(site)) for n in names
        ),
        site,
    )
    started = _started_jobs(site)
    periodic = {job: count for job, count in started.items() if job.startswith("periodic-")}
    assert set(periodic.values()) == {1}, periodic
    outbox_jobs = {job: count for job, count in started.items() if job.startswith("outbox-")}
    assert outbox_jobs and set(outbox_jobs.values()) == {1}, outbox_jobs
    by_worker = {p.name: p.log.read_text().count('"job_id"') for p in site.processes[2:]}
    print(f"{len(rows)} outbox rows, {emails} mails; periodic {periodic}; job lines {by_worker}")

    # gunicorn's access lines are JSON too, with the request id the response carried.
    answer = requests.get(f"{site.webs[0]}/book/manage/{'x' * 43}", timeout=30)
    request_id = answer.headers["X-Request-ID"]
    _wait("the JSON access line", lambda: _access_line(site, request_id) is not None, site)
    line = _access_line(site, request_id)
    assert line["path"] == "/book/manage/[redacted]" and line["status"] == answer.status_code

    # Both webs ready; Redis stops: both unready; Redis returns: both ready again.
    for web in site.webs:
        _wait(f"{web}/readyz ready", lambda web=web: _status(f"{web}/readyz") == 200, site)
    site.redis.stop()
    for web in site.webs:
        answer = requests.get(f"{web}/readyz", timeout=30)
        assert answer.status_code == 503
        failed = {n for n, r in answer.json()["checks"].items() if not r["ok"]}
        assert failed == {"redis", "worker"}, answer.json()
    site.redis.start()  # same port, empty: the workers reconnect and beat again
    for web in site.webs:
        _wait(f"{web}/readyz ready again", lambda web=web: _status(f"{web}/readyz") == 200, site)

    # The workers outlived the outage: a booking made now is delivered too.
    before = len(site.smtp.messages)
    _book(site, site.webs[1], london(day + timedelta(days=3), 10))
    _wait("the booking after the outage delivered", lambda: _all_delivered(site), site)
    _wait("its mail received", lambda: len(site.smtp.messages) > before, site)
    assert len(site.smtp.messages) == _email_rows(site.app)
