"""Benchmark of ``GET /api/v1/availability`` on SQLite, not a test.

    python bench/bench_api.py [--runs N] [--seed S]

Builds a migrated SQLite database in a temporary folder with the workload of
bench_engine.py (30 agents, Mon–Fri 09:00–17:00, one in New York, ~300 busy blocks each over
4 weeks, a group booking type, 60 min on a 30 min grid), then times the whole request through
the WSGI app (routing, token check, six queries, engine, JSON) with Flask's test client. Also
prints how many SQL statements one request issues for a 3-person and a 30-person group.
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
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import event

from app import create_app
from app.accounts import hours
from app.accounts.models import Group
from app.accounts.service import create_api_token, create_user, ensure_roles
from app.admin.settings import set_setting
from app.bookings.models import AvailabilitySource, BookingType
from app.config import TestConfig
from app.connections.models import BusyBlock
from app.database import begin_write
from app.extensions import db

START = datetime(2030, 3, 18, tzinfo=UTC)  # a Monday; crosses the 31 March clock change
WEEKS = 4


def populate(seed: int) -> str:
    rng = random.Random(seed)
    begin_write()
    ensure_roles()
    manager = create_user("bench@example.test", "Bench Manager", "booking-manager", "x" * 12)
    agents = []
    for n in range(30):
        zone = "America/New_York" if n == 29 else "Europe/London"
        agent = create_user(f"agent{n}@example.test", f"Agent {n}", "agent", timezone=zone)
        hours.set_weekly_hours(agent, {d: [(clock(9), clock(17))] for d in range(5)})
        agents.append(agent)
    span = int(timedelta(weeks=WEEKS).total_seconds() // 60)
    rows = []
    for agent in agents:
        for _ in range(300):
            at = START + timedelta(minutes=rng.randrange(0, span, 5))
            length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120)))
            rows.append(
                {
                    "person_id": agent.id,
                    "starts_at": at,
                    "ends_at": at + length,
                    "status": "busy",
                    "source": "bench",
                }
            )
    db.session.execute(db.insert(BusyBlock), rows)
    for slug, members in (("three", agents[:3]), ("thirty", agents)):
        group = Group(slug=slug, name=slug, members=members)
        db.session.add(group)
        db.session.flush()
        db.session.add(
            BookingType(
                slug=f"review-{slug}",
                name=f"Review ({slug})",
                duration_minutes=60,
                slot_interval_minutes=30,
                availability_source=AvailabilitySource.GROUP,
                availability_group_id=group.id,
                location_modes=["remote"],
                horizon_days=3650,
            )
        )
    set_setting("slot_availability_percentage", 50)  # as in bench_engine.py
    token = create_api_token(manager, "bench")
    db.session.commit()
    return token


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--profile", action="store_true", help="cProfile 20 requests instead")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="slotbook-bench-")
    url = f"sqlite:///{folder}/bench.db"
    app = create_app(TestConfig(url))
    with app.app_context():
        upgrade()
        token = populate(args.seed)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    query = {
        "start": START.isoformat(),
        "end": (START + timedelta(weeks=WEEKS)).isoformat(),
        "tz": "Europe/London",
    }

    def get(slug: str):
        response = client.get(
            "/api/v1/availability", query_string={**query, "booking_type": slug}, headers=headers
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    with app.app_context():
        engine = db.engine  # requests push their own context; this one must not stay open
    get("review-three")  # records the token's first use, which a steady state does not repeat
    for slug in ("review-three", "review-thirty"):
        statements: list[str] = []
        listener = lambda *a, seen=statements: seen.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        slots = get(slug)["slots"]
        event.remove(engine, "before_cursor_execute", listener)
        print(f"{slug}: {len(statements)} SQL statements, {len(slots)} slots")

    get("review-thirty")  # warm
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20):
            get("review-thirty")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        get("review-thirty")
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(
        f"GET /api/v1/availability, 30 agents, 4 weeks, {args.runs} runs: "
        f"median {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95)]:.1f} ms, "
        f"max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
