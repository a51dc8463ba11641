"""Bounded load benchmark against gunicorn on PostgreSQL (issue [14]), loopback only, not a test.

    python bench/load.py [--database-url postgresql://postgres@127.0.0.1:5432/slotbook_perf]
                         [--seconds 7] [--clients 8]

Prepares the database (its ``public`` schema dropped and recreated: use a database of your
own) with the workload of bench_api.py cut to 30 agents over 4 weeks (a 3-person and a
30-person group type; the 30-person one also bookable by the public), starts a private
redis-server, then for each worker model starts gunicorn on 127.0.0.1 (``sync`` with
2 x CPUs + 1 workers, as deploy/gunicorn.conf.py; ``gthread`` with 2 workers x 4 threads) and
drives it with ``--clients`` concurrent clients for ``--seconds`` per endpoint:

- ``GET /book/review-30`` (the public slot picker, a week);
- ``GET /api/v1/availability`` (30 agents, one week, bearer token);
- ``POST /api/v1/bookings`` (a 3-person type at a start offered at setup: the first few are
  201, the rest 409 once taken, both real answers of the booking path).

Each worker freezes what start-up made, as ``wsgi.py`` does (``--no-freeze``: as before).
Total load time is 2 models x 3 endpoints x ``--seconds`` (42 s by default). Prints requests/s,
p50 and p99 per endpoint and model, the status counts, the load average, and which model
served more requests per second overall.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["SLOTBOOK_ENV"] = "testing"

import requests  # noqa: E402

MODELS = {
    "sync": ["-k", "sync", "-w", str(2 * (os.cpu_count() or 1) + 1)],
    "gthread": ["-k", "gthread", "-w", "2", "--threads", "4"],
}


TAIL = ["--timeout", "60", "bench.load:make_app()"]


def make_app():
    """The app gunicorn serves (``bench.load:make_app()``): the prepared database and Redis,
    rate limits off (this measures the work, not the limiter)."""
    from app import create_app
    from app.config import TestConfig

    app = create_app(TestConfig(os.environ["LOAD_DATABASE_URL"], os.environ["LOAD_REDIS_URL"]))
    app.config["RATELIMIT_ENABLED"] = False
    from app.extensions import limiter

    limiter.enabled = False
    if os.environ.get("LOAD_FREEZE", "1") == "1":
        gc.freeze()  # as wsgi.py does after create_app (--no-freeze: as before)
    return app


def prepare(url: str, redis_url: str) -> tuple[str, list[str]]:
    """Migrate and fill the database; the API token and some offered starts of review-3."""
    import bench.bench_api as workload
    from app.admin.settings import set_setting
    from app.bookings.availability import slots_for
    from app.bookings.models import BookingType
    from app.extensions import db

    workload.AGENTS, workload.WEEKS, workload.GROUPS = 30, 4, (3, 30)
    os.environ["LOAD_DATABASE_URL"], os.environ["LOAD_REDIS_URL"] = url, redis_url
    workload.fresh_database(url)
    from flask_migrate import upgrade

    app = make_app()
    with app.app_context():
        upgrade()
        token = workload.populate(2024)
        kind = db.session.scalars(db.select(BookingType).where(BookingType.slug == "review-30"))
        kind.one().bookable_by = ["staff", "public"]
        set_setting("public_scheduling_enabled", True)
        db.session.commit()
        three = db.session.scalars(
            db.select(BookingType).where(BookingType.slug == "review-3")
        ).one()
        starts = [
            s.start.isoformat()
            for s in slots_for(three, workload.START, workload.START + timedelta(weeks=4))
        ]
    return token, starts


def drive(call, clients: int, seconds: float) -> tuple[list[float], dict[int, int]]:
    """``clients`` threads calling ``call(session)`` until the time is up."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            began = time.perf_counter()
            status = call(session)
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/slotbook_perf"
    )
    parser.add_argument("--seconds", type=float, default=7.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--models", default=",".join(MODELS), help="e.g. gthread")
    parser.add_argument(
        "--no-freeze", action="store_true", help="workers without wsgi.py's gc.freeze()"
    )
    args = parser.parse_args()
    assert args.seconds * 6 <= 60, "the load must stay within 60 s"

    from tests.conftest import RedisServer, free_port

    folder = Path(tempfile.mkdtemp(prefix="slotbook-load-"))
    redis_server = RedisServer(folder)
    redis_server.start()
    try:
        token, starts = prepare(args.database_url, redis_server.url)
        print(f"prepared; {len(starts)} offered starts of review-3")
        results = {}
        for model in args.models.split(","):
            options = MODELS[model]
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *options, "-b", f"127.0.0.1:{port}", *TAIL],
                cwd=ROOT,
                env={
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "LOAD_FREEZE": "0" if args.no_freeze else "1",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                results[model] = run_model(base, token, starts, args)
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(10)
    finally:
        redis_server.stop()
    report(results, args.seconds)


def run_model(base: str, token: str, starts: list[str], args) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/book", timeout=20)
            break
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    auth = {"Authorization": f"Bearer {token}"}
    week = {
        "booking_type": "review-30",
        "start": "2030-03-18T00:00:00+00:00",
        "end": "2030-03-25T00:00:00+00:00",
        "tz": "Europe/London",
    }
    rng = random.Random(7)
    calls = {
        "GET /book/review-30": lambda s: (
            s.get(
                f"{base}/book/review-30", params={"tz": "Europe/London", "day": "2030-03-19"}
            ).status_code
        ),
        "GET /api/v1/availability": lambda s: (
            s.get(f"{base}/api/v1/availability", params=week, headers=auth).status_code
        ),
        "POST /api/v1/bookings": lambda s: (
            s.post(
                f"{base}/api/v1/bookings",
                json={"booking_type": "review-3", "start": rng.choice(starts)},
                headers=auth,
            ).status_code
        ),
    }
    for call in calls.values():  # warm every worker a little
        for _ in range(4):
            call(requests)
    out = {}
    for name, call in calls.items():
        loadavg = Path("/proc/loadavg").read_text().split()[0]
        latencies, statuses = drive(call, args.clients, args.seconds)
        out[name] = (latencies, statuses, loadavg)
    return out


def report(results: dict, seconds: float) -> None:
    print("| model | endpoint | requests/s | p50 ms | p99 ms | statuses | load avg |")
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for model, endpoints in results.items():
        totals[model] = 0.0
        for name, (latencies, statuses, loadavg) in endpoints.items():
            ordered = sorted(latencies)
            rate = len(ordered) / seconds
            totals[model] += rate
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            print(
                f"| {model} | {name} | {rate:.1f} | {statistics.median(ordered) * 1000:.0f} "
                f"| {p99 * 1000:.0f} | {dict(sorted(statuses.items()))} | {loadavg} |"
            )
    best = max(totals, key=totals.get)
    print(
        "sum of requests/s over the three endpoints: "
        + ", ".join(f"{m} {t:.1f}" for m, t in totals.items())
        + f"; more requests per second: {best}"
    )


if __name__ == "__main__":
    main()
