"""Benchmark of a personal calendar feed (``GET /feeds/<token>.ics``, F1) on SQLite, not a test.

    python bench/bench_feed.py [--bookings 5000] [--runs 15] [--seed 2024]

Builds a migrated SQLite database in a temporary folder with one person holding ``--bookings``
bookings (inserted in bulk: bookings and attendees with two executemany statements), plus other
people's bookings the feed must skip, then times whole requests through the WSGI app with
Flask's test client:

- the first request of the process (imports, zone data, template of the VTIMEZONE cache cold);
- full answers (no ``If-None-Match``): query, ICS built with the icalendar library, ETag;
- conditional answers (``If-None-Match`` with the current ETag): one narrow query, then 304.

Prints the median, p95 and max of each, the body size, the number of events and the SQL
statements per request.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import event, insert

from app import create_app
from app.accounts.service import create_user, ensure_roles
from app.bookings.models import Attendee, Booking, BookingType
from app.config import TestConfig
from app.database import begin_write
from app.extensions import db
from app.notifications import feeds


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
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="slotbook-bench-")
    app = create_app(TestConfig(f"sqlite:///{folder}/bench.db"))
    app.config["SLOTBOOK_LIMIT_FEED"] = "1000000/minute"  # measure the feed, not the limiter
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        token, listed = populate(args.bookings, args.seed)
        print(f"populated in {time.perf_counter() - started:.1f} s")
        engine = db.engine
    client = app.test_client()
    path = f"/feeds/{token}.ics"

    def timed(headers=None):
        began = time.perf_counter()
        response = client.get(path, headers=headers or {})
        return time.perf_counter() - began, response

    first, response = timed()
    assert response.status_code == 200, response.status_code
    body = response.get_data()
    events = body.count(b"BEGIN:VEVENT")
    assert events == listed, (events, listed)
    etag = response.headers["ETag"]
    print(f"feed: {events} events, {len(body) / 1024:.0f} KiB, ETag {etag}")
    print(f"first request in this process: {first * 1000:.1f} ms")

    for label, headers, status in (
        ("full answer (200)", None, 200),
        ("If-None-Match (304)", {"If-None-Match": etag}, 304),
    ):
        statements: list[str] = []
        listener = lambda *a, seen=statements: seen.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        assert timed(headers)[1].status_code == status
        event.remove(engine, "before_cursor_execute", listener)
        times = []
        for _ in range(args.runs):
            took, answer = timed(headers)
            assert answer.status_code == status
            times.append(took)
        print(f"{label}: {_stats(times)}; {len(statements)} SQL statements")


if __name__ == "__main__":
    main()
