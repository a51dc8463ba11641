"""Benchmark of the people CSV import on SQLite, not a test.

    python bench/bench_people_import.py [--runs N] [--sizes 500,5000]

For each size, builds a fresh migrated SQLite database in a temporary folder with an owner and
two groups, then times ``parse_people_csv`` (reading the file and checking every row against
the database: roles, zones, groups, emails already taken) and ``import_people`` plus the one
commit, for a file of that many rows (a fifth agents, the rest learners, one in seven in both
groups, four time zones). Each run starts from an empty database. Also prints the number of
SQL statements one import issues, which must not grow with the rows beyond batching.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

from flask_migrate import upgrade
from sqlalchemy import event, func, select

from app import create_app
from app.accounts.models import Group, User
from app.accounts.people import import_people, parse_people_csv
from app.accounts.service import create_user, ensure_roles
from app.config import TestConfig
from app.database import begin_write
from app.extensions import db

ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", ""]


def csv_text(rows: int) -> str:
    lines = ["email,name,role,timezone,groups"]
    for n in range(rows):
        role = "learner" if n % 5 else "agent"
        groups = "Reviewers;north-team" if n % 7 == 0 else ""
        lines.append(f"person{n:05}@example.test,Person {n:05},{role},{ZONES[n % 4]},{groups}")
    return "\n".join(lines) + "\n"


def fresh_app(folder: str, name: str):
    app = create_app(TestConfig(f"sqlite:///{folder}/{name}.db"))
    with app.app_context():
        upgrade()
        begin_write()
        ensure_roles()
        create_user("owner@example.test", "Owner", "owner", "x" * 12)
        db.session.add_all(
            [Group(slug="reviewers", name="Reviewers"), Group(slug="north-team", name="North")]
        )
        db.session.commit()
    return app


def one_run(app, text: str, rows: int, count_sql: bool = False):
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        if count_sql:
            event.listen(engine, "before_cursor_execute", listener)
        begin_write()
        started = time.perf_counter()
        preview = parse_people_csv(text)
        parsed = time.perf_counter()
        assert preview.ok, preview.problems[:3]
        import_people(None, preview)
        db.session.commit()
        done = time.perf_counter()
        if count_sql:
            event.remove(engine, "before_cursor_execute", listener)
        total = db.session.scalar(select(func.count()).select_from(User))
        assert total == rows + 1, total
    return (parsed - started) * 1000, (done - parsed) * 1000, len(statements)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="500,5000")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="slotbook-bench-people-")
    for rows in (int(s) for s in args.sizes.split(",")):
        text = csv_text(rows)
        parse_ms, import_ms, total_ms = [], [], []
        statements = 0
        for run in range(args.runs):
            app = fresh_app(folder, f"r{rows}-{run}")
            p, i, n = one_run(app, text, rows, count_sql=run == 0)
            statements = n or statements
            parse_ms.append(p)
            import_ms.append(i)
            total_ms.append(p + i)
            with app.app_context():
                db.engine.dispose()
        print(
            f"{rows} rows, {args.runs} runs: "
            f"parse+check median {statistics.median(parse_ms):.0f} ms, "
            f"import+commit median {statistics.median(import_ms):.0f} ms, "
            f"total median {statistics.median(total_ms):.0f} ms (max {max(total_ms):.0f} ms), "
            f"{statements} SQL statements"
        )


if __name__ == "__main__":
    main()
