"""Benchmark of the Team week view (``GET /calendar?view=week&scope=team``) on SQLite, not a test.

    python bench/bench_calendar.py [--runs N] [--seed S] [--profile]

Builds a migrated SQLite database in a temporary folder: 25 agents, 60 learners, four booking
types, one week (Monday 18 March 2030) with 8 bookings per agent per weekday (1,000 bookings,
each with its agent and a learner as attendees, a mix of statuses) and 4 external busy
blocks per agent per weekday (500 rows, some overlapping bookings so conflicts are drawn),
plus the weeks either side so the range queries have something to skip. Then times whole
requests through the WSGI app with Flask's test client, signed in as a booking manager:
session, routing, the fixed number of queries, conflict detection, layout and Jinja. Wall
time is the measure; CPU time of the process is printed too, because on a shared machine it
shows the work done without the waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import event

from app import create_app
from app.accounts.service import create_user, ensure_roles
from app.bookings.models import Attendee, Booking, BookingType
from app.config import TestConfig
from app.connections.models import BusyBlock
from app.database import begin_write
from app.extensions import db

MONDAY = datetime(2030, 3, 18, tzinfo=UTC)  # 00:00 GMT = local midnight in London
PASSWORD = "bench-password-1"
AGENTS, LEARNERS = 25, 60
TYPES = [
    ("planning", "Planning meeting", "#2457a7", 45),
    ("assessment", "Assessment component", "#7a3fb0", 45),
    ("review", "Review", "#1f7a45", 45),
    ("public", "Public appointment", "#b0531f", 30),
]


def populate(seed: int) -> int:
    """Create the workload; return how many bookings + busy blocks fall in the timed week."""
    rng = random.Random(seed)
    begin_write()
    ensure_roles()
    create_user("bench@example.test", "Bench Manager", "booking-manager", PASSWORD)
    agents = [create_user(f"agent{n}@example.test", f"Agent {n:02d}", "agent") for n in range(25)]
    learners = [
        create_user(f"learner{n}@example.test", f"Learner {n:02d}", "learner")
        for n in range(LEARNERS)
    ]
    types = []
    for slug, name, colour, minutes in TYPES:
        kind = BookingType(slug=slug, name=name, colour=colour, duration_minutes=minutes)
        db.session.add(kind)
        types.append(kind)
    db.session.flush()

    bookings, attendees, blocks = [], [], []
    in_week = 0
    next_id = 1
    for week in (-1, 0, 1):
        for day in range(5):
            date0 = MONDAY + timedelta(days=7 * week + day)
            for a, agent in enumerate(agents):
                for hour in range(9, 17):  # eight bookings a day
                    kind = rng.choice(types)
                    start = date0 + timedelta(hours=hour, minutes=rng.choice((0, 15)))
                    # Learners are never in two bookings at once (their holds forbid it).
                    learner = learners[(a + 25 * hour + day) % LEARNERS]
                    status = rng.choices(
                        ("confirmed", "provisional", "completed", "cancelled"), (70, 20, 5, 5)
                    )[0]
                    bookings.append(
                        {
                            "id": next_id,
                            "uid": f"bench-{next_id}",
                            "booking_type_id": kind.id,
                            "status": status,
                            "title": kind.name,
                            "starts_at": start,
                            "ends_at": start + timedelta(minutes=kind.duration_minutes),
                            "owner_id": agent.id,
                            "learner_id": learner.id,
                            "created_by_id": agent.id,
                        }
                    )
                    attendees.append({"booking_id": next_id, "user_id": agent.id, "role": "agent"})
                    attendees.append(
                        {"booking_id": next_id, "user_id": learner.id, "role": "learner"}
                    )
                    next_id += 1
                    in_week += week == 0
                for _ in range(4):  # four calendar events a day, some over bookings
                    start = date0 + timedelta(hours=8, minutes=15 * rng.randrange(0, 40))
                    blocks.append(
                        {
                            "person_id": agent.id,
                            "starts_at": start,
                            "ends_at": start + timedelta(minutes=rng.choice((30, 45, 60))),
                            "status": rng.choice(("busy", "busy", "tentative", "oof")),
                            "source": rng.choice(("graph-org", "caldav:1", "ics:2")),
                            "title": "Team stand-up",
                        }
                    )
                    in_week += week == 0
    db.session.execute(db.insert(Booking), bookings)
    db.session.execute(db.insert(Attendee), attendees)
    db.session.execute(db.insert(BusyBlock), blocks)
    db.session.commit()
    return in_week


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--profile", action="store_true", help="cProfile 20 requests instead")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="slotbook-bench-")
    app = create_app(TestConfig(f"sqlite:///{folder}/bench.db"))
    with app.app_context():
        upgrade()
        items = populate(args.seed)
        engine = db.engine  # requests push their own context; this one must not stay open
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = {"email": "bench@example.test", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=data).status_code == 302
    url = f"/calendar?view=week&date={MONDAY.date().isoformat()}&scope=team"

    def get(headers=None) -> str:
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)

    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    html = get()
    event.remove(engine, "before_cursor_execute", listener)
    drawn, people = html.count('<li class="cal-item'), html.count('<th scope="row">')
    print(
        f"{items} bookings + busy blocks in the week; page {len(html) // 1024} KiB, "
        f"{drawn} items drawn, {html.count('has-conflict')} conflicts, {people} people, "
        f"{len(statements)} SQL statements"
    )

    for _ in range(20):
        get()  # warm: caches, and the garbage collector's view of the long-lived objects
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20):
            get()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(35)
        return
    kinds = {"page": None, "HTMX fragment": {"HX-Request": "true"}}
    times: dict[str, list[float]] = {label: [] for label in kinds}
    cpu: dict[str, list[float]] = {label: [] for label in kinds}
    for _ in range(args.runs):  # interleaved, so both see the same machine
        for label, headers in kinds.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            get(headers)
            times[label].append((time.perf_counter() - started) * 1000)
            cpu[label].append((time.process_time() - started_cpu) * 1000)
    for label in kinds:
        wall = sorted(times[label])
        print(
            f"GET {url} ({label}), {args.runs} runs: median {statistics.median(wall):.1f} ms, "
            f"p95 {wall[int(len(wall) * 0.95)]:.1f} ms, max {wall[-1]:.1f} ms; "
            f"CPU median {statistics.median(cpu[label]):.1f} ms"
        )


if __name__ == "__main__":
    main()
