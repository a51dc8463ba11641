"""Benchmark of the Team week view (``GET /calendar?view=week&scope=team``) on SQLite, not a test.

    python bench/bench_calendar.py [--runs N] [--seed S] [--profile]

Builds a migrated SQLite database in a temporary folder: 25 agents, 60 learners, four booking
types, one week (Monday 18 March 2030) with 8 bookings per agent per weekday (1,000 bookings,
each with its agent and a learner as attendees, a mix of statuses) and 4 external busy
blocks per agent per weekday (500 rows, some overlapping bookings so conflicts are drawn),
plus the weeks either side so the range queries have something to skip. Then times whole
requests through the WSGI app with Flask's test client, signed in as a booking manager:
session, routing, the fixed number of queries, conflict detection, layout and Jinja. The old
path (``bench/legacy_calendar``: the queries, templates and pick-a-slot globals from before
issue [14]) runs through the same route with the garbage collector left on, as the route was
before it paused the collector. Wall time is the measure; CPU time of the process is printed
too, because on a shared machine it shows the work done without the waiting for a core.
"""

from __future__ import annotations

import argparse
import contextlib
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


def populate(seed: int, agent_count: int = AGENTS) -> int:
    """Create the workload; return how many bookings + busy blocks fall in the timed week."""
    learner_count = max(LEARNERS, agent_count + 10)
    rng = random.Random(seed)
    begin_write()
    ensure_roles()
    create_user("bench@example.test", "Bench Manager", "booking-manager", PASSWORD)
    agents = [
        create_user(f"agent{n}@example.test", f"Agent {n:03d}", "agent") for n in range(agent_count)
    ]
    learners = [
        create_user(f"learner{n}@example.test", f"Learner {n:03d}", "learner")
        for n in range(learner_count)
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
                    learner = learners[(a + 25 * hour + day) % learner_count]
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
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--profile", action="store_true", help="cProfile 10 requests instead")
    parser.add_argument("--agents", default="25,100", help="people in the Team week, per run")
    args = parser.parse_args()
    for count in (int(n) for n in args.agents.split(",")):
        run(args, count)


def _old_environment(app):
    """A Jinja environment that finds the pre-[14] calendar templates first, with the
    pre-[14] pick-a-slot globals; the app's own environment stays as it is."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    from bench.legacy_calendar import pick

    env = app.create_jinja_environment()
    env.globals.update(app.jinja_env.globals)
    env.filters.update(app.jinja_env.filters)
    env.globals.update(slot_pick_url=pick.slot_pick_url, lane_pick_url=pick.lane_pick_url)
    legacy = Path(__file__).resolve().parent / "legacy_calendar" / "templates"
    env.loader = ChoiceLoader([FileSystemLoader(str(legacy)), app.jinja_env.loader])
    return env


def run(args, agent_count: int) -> None:
    from app.calendar import routes
    from bench.legacy_calendar import queries as legacy

    folder = tempfile.mkdtemp(prefix="slotbook-bench-")
    app = create_app(TestConfig(f"sqlite:///{folder}/bench.db"))
    with app.app_context():
        upgrade()
        items = populate(args.seed, agent_count)
        engine = db.engine  # requests push their own context; this one must not stay open
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = {"email": "bench@example.test", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=data).status_code == 302
    url = f"/calendar?view=week&date={MONDAY.date().isoformat()}&scope=team"
    new_env, old_env = app.jinja_env, _old_environment(app)
    new_load = routes.load_calendar
    new_pause = routes.collector_paused

    def get(headers=None) -> str:
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)

    def old(headers=None) -> str:
        routes.load_calendar = legacy.load_calendar
        routes.collector_paused = contextlib.nullcontext  # the route ran with the collector on
        app.__dict__["jinja_env"] = old_env
        try:
            return get(headers)
        finally:
            routes.load_calendar = new_load
            routes.collector_paused = new_pause
            app.__dict__["jinja_env"] = new_env

    counts = {}
    pages = {}
    for label, call in (("new", get), ("old", old)):
        statements: list[str] = []
        listener = lambda *a, seen=statements: seen.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        pages[label] = call()
        event.remove(engine, "before_cursor_execute", listener)
        counts[label] = len(statements)
    signed = re.compile(r"[\w-]{20,}\.[\w-]+\.[\w-]{20,}")  # CSRF tokens carry a timestamp
    html = signed.sub("TOKEN", pages["new"])
    pages["old"] = signed.sub("TOKEN", pages["old"])
    if html != pages["old"]:
        import difflib

        diff = difflib.unified_diff(pages["old"].splitlines(), html.splitlines(), lineterm="")
        print("\n".join(list(diff)[:20]))
        raise SystemExit("the old and the new Team week differ")
    drawn, people = html.count('<li class="cal-item'), html.count('<th scope="row">')
    print(
        f"{agent_count} agents: {items} bookings + busy blocks in the week; page "
        f"{len(html) // 1024} KiB, {drawn} items drawn, {html.count('has-conflict')} conflicts, "
        f"{people} people; SQL statements new {counts['new']}, old {counts['old']}"
    )
    for _ in range(2):
        get()  # warm: caches, and the garbage collector's view of the long-lived objects
        old()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            get()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(35)
        return
    calls = {
        "page": lambda: get(),
        "HTMX fragment": lambda: get({"HX-Request": "true"}),
        "old page": lambda: old(),
        "old HTMX fragment": lambda: old({"HX-Request": "true"}),
    }
    times: dict[str, list[float]] = {label: [] for label in calls}
    cpu: dict[str, list[float]] = {label: [] for label in calls}
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    for _ in range(args.runs):  # interleaved, so all see the same machine
        for label, call in calls.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            call()
            times[label].append((time.perf_counter() - started) * 1000)
            cpu[label].append((time.process_time() - started_cpu) * 1000)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    median = {label: statistics.median(values) for label, values in times.items()}
    for label in calls:
        print(
            f"{agent_count} agents, {label}, {args.runs} runs: median {median[label]:.1f} ms, "
            f"max {max(times[label]):.1f} ms; CPU median {statistics.median(cpu[label]):.1f} ms"
        )
    print(
        f"{agent_count} agents: old ÷ new, page {median['old page'] / median['page']:.2f}, "
        f"fragment {median['old HTMX fragment'] / median['HTMX fragment']:.2f}"
    )


if __name__ == "__main__":
    main()
