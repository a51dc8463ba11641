"""Benchmark of the Google busy-cache sync (issue [12]) against the local Google stand-in.

    python bench/bench_google_sync.py [--calendars N] [--refresh-runs N] [--events N]

Starts ``tests/fakes/google_server.py`` (HTTPS on a free port of 127.0.0.1, its throw-away CA
trusted through REQUESTS_CA_BUNDLE, as the tests do) and a migrated SQLite database in a
temporary folder, with GOOGLE_AUTH_URI / GOOGLE_TOKEN_URI / GOOGLE_CALENDAR_API_URL pointing
at it.

Workload 1, personal links: ``--calendars`` agents (100), each with their own Google account
holding one calendar of ``--events`` events (10: 7 single, 3 daily with COUNT 5, over the
next 8 weeks), each linked with ``finish_google_link`` (one connection per person). Timed:
the first full sync of every connection, then ``--refresh-runs`` refreshes in which nothing
changed, each calling ``sync_connection`` for every connection one after the other, as
``flask sync run`` does.

Workload 2, the Workspace link: the same number of agents in one domain, covered by one
service-account connection (one calendar per person). Timed the same way: the first sync,
then refreshes with nothing changed.

Requests per calendar are counted from the stand-in's own log, split into Calendar API
requests and token-endpoint requests. Wall time by ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade

from app import create_app
from app.accounts.models import User
from app.accounts.service import create_user, ensure_roles
from app.admin.settings import set_setting
from app.config import TestConfig
from app.connections import service
from app.connections.providers.google import LinkedAccount
from app.connections.sync import sync_connection
from app.database import begin_write
from app.extensions import db
from tests.fakes.google_server import FakeGoogle
from tests.fakes.graph_server import make_tls_files


def add_events(fake: FakeGoogle, calendar: str, rng: random.Random, count: int, start) -> None:
    singles = count * 7 // 10
    for n in range(count):
        day = start + timedelta(days=rng.randrange(56), hours=rng.randrange(8, 17))
        end = day + timedelta(minutes=rng.choice((30, 60, 90)))
        if n < singles:
            fake.add_event(calendar, f"Event {n}", day, end)
        else:
            fake.add_event(calendar, f"Daily {n}", day, end, daily=5)


def sync_all(ids: list[int]) -> float:
    started = time.perf_counter()
    for connection_id in ids:
        report = sync_connection(connection_id)
        assert report.error is None and not report.warnings, report
    return time.perf_counter() - started


def counted(fake: FakeGoogle, fn) -> tuple[float, int, int]:
    """Run ``fn``; its wall time with the Calendar API and token requests it made."""
    api, token = len(fake.api_requests()), len(fake.token_requests())
    wall = fn()
    return wall, len(fake.api_requests()) - api, len(fake.token_requests()) - token


def report(label: str, fake: FakeGoogle, ids: list[int], runs: int, calendars: int) -> None:
    wall, api, token = counted(fake, lambda: sync_all(ids))
    print(
        f"| {label}: first sync, {calendars} calendars | {wall:.2f} s, "
        f"{api / calendars:.2f} API + {token / calendars:.2f} token requests per calendar |"
    )
    walls, apis, tokens = [], [], []
    for _ in range(runs):
        wall, api, token = counted(fake, lambda: sync_all(ids))
        walls.append(wall)
        apis.append(api)
        tokens.append(token)
    print(
        f"| {label}: no-change refresh, {calendars} calendars ({runs} runs) | median "
        f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s; "
        f"{statistics.median(walls) / calendars * 1000:.1f} ms per calendar |"
    )
    print(
        f"| {label}: requests per calendar, no-change refresh | "
        f"{statistics.median(apis) / calendars:.2f} API + "
        f"{statistics.median(tokens) / calendars:.2f} token |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--refresh-runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="slotbook-bench-google-") as folder:
        root = Path(folder)
        fake = FakeGoogle(make_tls_files(root / "tls"))
        fake.start()
        os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_path
        try:
            run(args, rng, root, fake)
        finally:
            fake.stop()


def run(args, rng: random.Random, root: Path, fake: FakeGoogle) -> None:
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow += timedelta(days=1)
    n = args.calendars
    app = create_app(TestConfig(f"sqlite:///{root}/bench.db"))
    app.config.update(**fake.config())
    with app.app_context():
        upgrade()
        begin_write()
        ensure_roles()
        set_setting("primary_calendar_provider", "google")
        personal = [
            create_user(f"agent{i:03d}@home.example", f"Agent {i:03d}", "agent") for i in range(n)
        ]
        staff = [
            create_user(f"staff{i:03d}@school.example", f"Staff {i:03d}", "agent") for i in range(n)
        ]
        service.save_google_client(fake.client_id, fake.client_secret)
        personal_ids = [u.id for u in personal]
        staff_emails = [u.email for u in staff]
        db.session.commit()

        ids = []
        for i, user_id in enumerate(personal_ids):
            email = f"person{i:03d}@gmail.example"
            fake.add_account(email)
            add_events(fake, email, rng, args.events, tomorrow)
            account = LinkedAccount(fake.issue_refresh_token(email), email, email)
            begin_write()
            connection = service.finish_google_link(db.session.get(User, user_id), account)
            db.session.commit()
            ids.append(connection.id)
        print(f"load average before the measurement: {os.getloadavg()[0]:.1f} (1 min)")
        print("| measure | value |\n|---|---|")
        report("personal links", fake, ids, args.refresh_runs, n)

        for email in staff_emails:
            fake.add_account(email)
            add_events(fake, email, rng, args.events, tomorrow)
        begin_write()
        workspace = service.save_google_workspace(fake.service_account_info(), ["school.example"])
        db.session.commit()
        report("Workspace link", fake, [workspace.id], args.refresh_runs, n)
        db.session.remove()


if __name__ == "__main__":
    main()
