"""Benchmark of ``GET /api/v1/availability`` on SQLite or PostgreSQL, not a test.

    python bench/bench_api.py [--runs 5] [--sizes 3,30,100,200] [--weeks 1,4,8]
                              [--database-url postgresql://postgres@127.0.0.1:5432/slotbook_perf]
    python bench/bench_api.py --profile 200x8     # cProfile of 10 requests of one size

Builds a migrated database (SQLite in a temporary folder, or the PostgreSQL database given,
whose ``public`` schema is dropped and recreated first) with 200 agents working Mon–Fri
09:00–17:00 (every tenth in America/New_York), ~40 calendar busy blocks per agent per week
anywhere in the day and week (15–120 min, overlapping allowed) and two bookings per agent per
weekday holding their time (one in ten of those holds released, as a cancelled booking leaves
it) over 8 weeks from Monday 18 March 2030 (crossing the 31 March clock change); four groups
(the first 3, 30, 100 and all 200 agents) each with a group booking type (60 minutes, 30-minute
grid), slot availability percentage 50 %.

For each size and range it times, interleaved in one loop (``--runs`` rounds, medians; each
round starts with the next variant, so that each follows every other as often):

- **endpoint**: the whole request through the WSGI app with Flask's test client (routing,
  bearer token, loading, engine, JSON);
- **bare**: a request to a route that only this script registers, with the endpoint's query
  string (plus the key of what to replay), which replays the very SELECT statements the
  endpoint issued (captured from the driver, same parameters) on the request's connection,
  fetches every row as the driver's tuples (no SQLAlchemy ``Row`` each, as the endpoint's
  bulk reads build none; with them, as before 5 December 2026, the floor was 5-10 % slower
  and every ratio read lower) and answers 204: the floor for "as fast as its own query"
  (with the garbage collector held while it fetches, as the endpoint holds it while loading, so the
  floor is the SQL and the driver, not the collector). With the same query string, the test
  client's encoding and Werkzeug's parsing of it (~70 us) weigh on both sides: with a
  shorter URL they counted as the endpoint's own work;
- **old**: the endpoint with the availability path as it was before issue [14]: the copy of
  the old ``load_context`` (``bench/legacy_availability.py``), the booking type as the ORM
  object (``params.booking_type``) and the people as ORM users (``candidate_people``), and
  the garbage collector left running (``--old-loader-only`` swaps the loader alone); checked
  to answer the same slots. The rest of the request (token, settings, JSON) is today's in
  both.

Prints endpoint ÷ bare and old ÷ endpoint per size, and the SQL statements per request.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import create_engine, event, insert, text

from app import create_app
from app.accounts import hours
from app.accounts.models import Group
from app.accounts.service import create_api_token, create_user, ensure_roles
from app.admin.settings import set_setting
from app.api import params
from app.bookings import availability
from app.bookings.models import AvailabilitySource, Booking, BookingType, Hold
from app.config import TestConfig
from app.connections.models import BusyBlock
from app.database import begin_write
from app.extensions import db
from bench.legacy_availability import load_context as legacy_load_context

START = datetime(2030, 3, 18, tzinfo=UTC)  # a Monday; crosses the 31 March clock change
WEEKS = 8
AGENTS = 200
BLOCKS_PER_WEEK = 40
GROUPS = (3, 30, 100, 200)


def populate(seed: int) -> str:
    """Create the workload (see the module docstring); return an API token of a manager."""
    rng = random.Random(seed)
    begin_write()
    ensure_roles()
    manager = create_user("bench@example.test", "Bench Manager", "booking-manager", "x" * 12)
    agents = []
    for n in range(AGENTS):
        zone = "America/New_York" if n % 10 == 9 else "Europe/London"
        agent = create_user(f"agent{n}@example.test", f"Agent {n}", "agent", timezone=zone)
        hours.set_weekly_hours(agent, {d: [(clock(9), clock(17))] for d in range(5)})
        agents.append(agent)
    kinds = {}
    for size in GROUPS:
        group = Group(slug=f"g{size}", name=f"{size} agents", members=agents[:size])
        db.session.add(group)
        db.session.flush()
        kind = BookingType(
            slug=f"review-{size}",
            name=f"Review ({size})",
            duration_minutes=60,
            slot_interval_minutes=30,
            buffer_before_minutes=10,
            buffer_after_minutes=5,
            availability_source=AvailabilitySource.GROUP,
            availability_group_id=group.id,
            location_modes=["remote"],
            horizon_days=3650,
        )
        db.session.add(kind)
        kinds[size] = kind
    db.session.flush()
    span = int(timedelta(weeks=WEEKS).total_seconds() // 60)
    blocks = []
    for agent in agents:
        for _ in range(BLOCKS_PER_WEEK * WEEKS):
            at = START + timedelta(minutes=rng.randrange(0, span, 5))
            length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120)))
            blocks.append(
                {
                    "person_id": agent.id,
                    "starts_at": at,
                    "ends_at": at + length,
                    "status": rng.choice(("busy", "busy", "busy", "tentative", "free")),
                    "source": "bench",
                }
            )
    db.session.execute(insert(BusyBlock), blocks)
    bookings, holds = [], []
    next_id = 1
    for agent in agents:
        for day in range(WEEKS * 7):
            if day % 7 >= 5:
                continue
            for hour in rng.sample((9, 11, 13, 15), 2):  # active holds never overlap
                starts = START + timedelta(days=day, hours=hour)
                active = rng.random() >= 0.1
                bookings.append(
                    {
                        "id": next_id,
                        "uid": str(uuid.UUID(int=rng.getrandbits(128))),
                        "booking_type_id": kinds[rng.choice(GROUPS)].id,
                        "status": "confirmed" if active else "cancelled",
                        "title": "Review",
                        "starts_at": starts,
                        "ends_at": starts + timedelta(hours=1),
                        "owner_id": agent.id,
                    }
                )
                holds.append(
                    {
                        "booking_id": next_id,
                        "person_id": agent.id,
                        "starts_at": starts - timedelta(minutes=10),
                        "ends_at": starts + timedelta(minutes=65),
                        "active": active,
                    }
                )
                next_id += 1
    db.session.execute(insert(Booking), bookings)
    db.session.execute(insert(Hold), holds)
    set_setting("slot_availability_percentage", 50)
    token = create_api_token(manager, "bench")
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval('bookings_id_seq', :n)"), {"n": next_id})
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return token


def fresh_database(url: str | None) -> str:
    """A URL of an empty database: a temporary SQLite file, or the given PostgreSQL database
    with its public schema dropped and recreated (use a database of your own)."""
    if url is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='slotbook-bench-')}/bench.db"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--sizes", default=",".join(map(str, GROUPS)))
    parser.add_argument("--weeks", default="1,4,8")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-old", action="store_true", help="skip the pre-[14] code path")
    parser.add_argument(
        "--old-loader-only", action="store_true", help="old: swap only load_context"
    )
    parser.add_argument("--profile", metavar="SIZExWEEKS", help="cProfile 10 requests instead")
    parser.add_argument("--sort", default="tottime", help="cProfile order (e.g. cumulative)")
    parser.add_argument("--lines", type=int, default=25, help="cProfile lines printed")
    args = parser.parse_args()

    url = fresh_database(args.database_url)
    app = create_app(TestConfig(url))
    replay: dict[str, list[tuple[str, object]]] = {}

    def bare():
        """Run the endpoint's SELECTs as captured, fetch every row, answer nothing."""
        from flask import request

        conn = db.session.connection()
        with current_pause():  # as the endpoint's loading: the floor pays no collector either
            for statement, parameters in replay[request.args["key"]]:
                result = conn.exec_driver_sql(statement, parameters)
                result.cursor.fetchall()  # the driver's tuples, as the endpoint reads them
                result.close()
        return "", 204

    app.add_url_rule("/bench/bare", "bench_bare", bare)
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        token = populate(args.seed)
        engine = db.engine  # requests push their own context; this one must not stay open
        dialect = engine.dialect.name
    print(f"database: {dialect}, populated in {time.perf_counter() - started:.1f} s")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def query_of(size: int, weeks: int) -> dict[str, str]:
        return {
            "booking_type": f"review-{size}",
            "start": START.isoformat(),
            "end": (START + timedelta(weeks=weeks)).isoformat(),
            "tz": "Europe/London",
        }

    def answered(size: int, weeks: int):
        """One request, checked for 200: what is timed (the client does not parse the JSON,
        as bare's answer is not parsed either)."""
        response = client.get(
            "/api/v1/availability", query_string=query_of(size, weeks), headers=headers
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    def endpoint(size: int, weeks: int) -> list:
        return answered(size, weeks).get_json()["slots"]

    def old(size: int, weeks: int) -> list:
        return as_before(size, weeks).get_json()["slots"]

    def as_before(size: int, weeks: int):
        """A request with the availability path as it was before [14]."""
        availability.load_context = legacy_load_context
        if not args.old_loader_only:
            params.offer_rules = params.booking_type
            availability.candidates = availability.candidate_people
            availability.collector_paused = contextlib.nullcontext
        try:
            return answered(size, weeks)
        finally:
            availability.load_context = current_load_context
            params.offer_rules = current_offer_rules
            availability.candidates = current_candidates
            availability.collector_paused = current_pause

    def floor(key: str) -> None:
        size, weeks = (int(n) for n in key.split("x"))
        query = {**query_of(size, weeks), "key": key}  # the same query for the client to encode
        response = client.get("/bench/bare", query_string=query, headers=headers)
        assert response.status_code == 204

    def captured(call, size: int, weeks: int) -> tuple[list, list[tuple[str, object]]]:
        seen: list[tuple[str, object]] = []
        listener = lambda *a: seen.append((a[2], a[3]))  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            slots = call(size, weeks)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return slots, seen

    current_load_context = availability.load_context
    current_offer_rules = params.offer_rules
    current_candidates = availability.candidates
    current_pause = availability.collector_paused
    endpoint(3, 1)  # records the token's first use, which a steady state does not repeat
    sizes = [int(s) for s in args.sizes.split(",")]
    ranges = [int(w) for w in args.weeks.split(",")]
    if args.profile:
        import cProfile
        import pstats

        size, weeks = (int(x) for x in args.profile.split("x"))
        endpoint(size, weeks)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            endpoint(size, weeks)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)
        return

    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    print(
        "| agents | weeks | slots | statements new/old | endpoint ms | bare ms | old ms "
        "| endpoint ÷ bare | old ÷ endpoint |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for weeks in ranges:
            key = f"{size}x{weeks}"
            slots, statements = captured(endpoint, size, weeks)
            replay[key] = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
            old_count = "-"
            if not args.no_old:
                old_slots, old_statements = captured(old, size, weeks)
                assert old_slots == slots, f"old and new differ at {key}"
                old_count = str(len(old_statements))
            floor(key)
            times: dict[str, list[float]] = {"new": [], "bare": [], "old": []}
            variants = [("new", answered, (size, weeks)), ("bare", floor, (key,))]
            if not args.no_old:
                variants.append(("old", as_before, (size, weeks)))
            for run in range(args.runs):
                # Each round starts with the next variant: each one follows every other as
                # often, so none always runs in the caches another just warmed (bare right
                # after the endpoint's same SELECTs) or cooled (the endpoint right after old).
                turn = run % len(variants)
                for name, call, arguments in variants[turn:] + variants[:turn]:
                    began = time.perf_counter()
                    call(*arguments)
                    times[name].append((time.perf_counter() - began) * 1000)
            new_ms = statistics.median(times["new"])
            bare_ms = statistics.median(times["bare"])
            old_ms = statistics.median(times["old"]) if times["old"] else float("nan")
            print(
                f"| {size} | {weeks} | {len(slots)} | {len(statements)}/{old_count} "
                f"| {new_ms:.1f} | {bare_ms:.1f} | {old_ms:.1f} | {new_ms / bare_ms:.2f} "
                f"| {old_ms / new_ms:.2f} |",
                flush=True,
            )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
