"""Benchmark of ``flask export`` and ``flask import`` (I2), not a test.

    python bench/bench_export.py [--bookings N] [--database-url postgresql://...]

Two organisations: the demo (``flask demo seed``) and a larger one (the demo plus N system
bookings, default 2,000, for 20 more agents with guests). Each is exported from a migrated
database (SQLite files in a temporary folder, or the given PostgreSQL database, whose tables
are emptied between steps), then imported into an empty migrated database, and the
re-export is checked to be the same document. Times cover what the commands do after the
app has started: read + serialise + write the file; read + parse + validate + insert +
commit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text

from app import create_app
from app.accounts.service import create_user
from app.bookings import service
from app.bookings.models import BookingType
from app.config import TestConfig, normalise_database_url
from app.database import begin_write
from app.demo import seed
from app.extensions import db
from app.transfer import dump, export_document, import_document, parse


def fresh(url: str | None, folder: Path, name: str) -> str:
    """A migrated, empty database: a new SQLite file, or the PostgreSQL one emptied."""
    if url is None:
        url = f"sqlite:///{folder / name}.db"
    else:
        engine = create_engine(normalise_database_url(url))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(TestConfig(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def populate(app, extra_bookings: int) -> None:
    with app.app_context():
        seed()
        db.session.commit()
        if not extra_bookings:
            return
        begin_write()
        kind = db.session.scalars(select(BookingType).order_by(BookingType.id)).first()
        agents = [
            create_user(f"bench{i}@example.test", f"Bench Agent {i}", "agent", None)
            for i in range(20)
        ]
        start = datetime(2031, 1, 6, 8, tzinfo=UTC)
        for n in range(extra_bookings):
            agent = agents[n % len(agents)]
            slot = start + timedelta(hours=2 * (n // len(agents)))
            guest = service.Guest(email=f"guest{n}@outside.test", name=f"Guest {n}")
            service.create_booking(None, kind, slot, [agent], guests=[guest])
        db.session.commit()


def run(label: str, url: str | None, folder: Path, extra: int) -> dict:
    source_url = fresh(url, folder, f"{label}-source")
    source = create_app(TestConfig(source_url))
    populate(source, extra)
    path = folder / f"{label}.json"
    with source.app_context():
        began = time.perf_counter()
        document = export_document()
        db.session.rollback()
        path.write_text(dump(document), encoding="utf-8")
        export_s = time.perf_counter() - began
        db.engine.dispose()

    target = create_app(TestConfig(fresh(url, folder, f"{label}-target")))
    with target.app_context():
        began = time.perf_counter()
        summary = import_document(parse(path.read_bytes()))
        db.session.commit()
        import_s = time.perf_counter() - began
        again = export_document()
        db.session.rollback()
        db.engine.dispose()
    same = {k: v for k, v in again.items() if k != "exported_at"} == {
        k: v for k, v in json.loads(path.read_text()).items() if k != "exported_at"
    }
    return {
        "organisation": label,
        "people": summary.counts["people"],
        "bookings": summary.counts["bookings"],
        "rows": sum(summary.counts.values()),
        "file_kib": round(path.stat().st_size / 1024),
        "export_s": round(export_s, 2),
        "import_s": round(import_s, 2),
        "round_trip_equal": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; default SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, extra in (("demo", 0), (f"demo+{args.bookings}", args.bookings)):
            print(json.dumps(run(label, args.database_url, folder, extra)))


if __name__ == "__main__":
    main()
