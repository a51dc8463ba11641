"""Benchmark of the CalDAV busy-cache sync (K4) against a local Radicale, not a test.

    python bench/bench_caldav_sync.py [--calendars N] [--refresh-runs N] [--big-events N]
                                      [--full-runs N] [--seed S] [--profile]

Starts Radicale (from this virtualenv) on a free port of 127.0.0.1 in a temporary folder, as
``tests/connections/conftest.py`` does, and builds a migrated SQLite database next to it.

Workload 1: ``--calendars`` Radicale users (100), each with one calendar of 10 events (7
single, 3 weekly recurring with COUNT 6, over the next 8 weeks) and each linked by its own
Slotbook agent with ``add_caldav`` (one connection per person). Timed: the first full sync
of every connection, then ``--refresh-runs`` refreshes in which nothing changed. Each refresh
syncs every connection one after the other with ``sync_connection``, as ``flask sync run``
does.

Workload 2: one calendar with ``--big-events`` events (2,000: 90 % single events over the next
12 months, 10 % weekly recurring with COUNT 10 starting in the first 40 weeks, so every
occurrence is inside the 365-day sync window). The events are PUT one by one before the
calendar is linked; the upload is not timed. Timed: the first full sync, then
``--full-runs`` more full reads (the sync cursor dropped, as after an expired sync-token).

Wall time is the measure. CPU time of this process and of the Radicale process (from
/proc/<pid>/stat) are printed too, to show which side does the work.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SLOTBOOK_ENV"] = "testing"

import requests
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.accounts.models import User
from app.accounts.service import create_user, ensure_roles
from app.admin.settings import set_setting
from app.config import TestConfig
from app.connections.models import BusyBlock, LinkedCalendar
from app.connections.service import add_caldav
from app.connections.sync import SyncReport, sync_connection
from app.database import begin_write
from app.extensions import db

RADICALE_CONFIG = """\
[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
htpasswd_cache = False
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {storage}

[logging]
level = warning
"""

MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{name}</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"""

ICS = {"Content-Type": "text/calendar; charset=utf-8"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- Radicale ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_radicale(root: Path) -> tuple[subprocess.Popen, str, Path]:
    users = root / "users"
    users.write_text("")
    port = free_port()
    config = root / "radicale.conf"
    config.write_text(RADICALE_CONFIG.format(port=port, users=users, storage=root / "storage"))
    log = (root / "radicale.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)], stdout=log, stderr=log
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Radicale exited at start-up; see {root / 'radicale.log'}")
        try:
            requests.get(base_url + "/", timeout=1)
            return process, base_url, users
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Radicale's threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def make_calendar(session: requests.Session, url: str, name: str) -> None:
    response = session.request(
        "MKCALENDAR",
        url,
        data=MKCALENDAR.format(name=name).encode(),
        headers={"Content-Type": "application/xml; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


def upload(session: requests.Session, calendar_url: str, events: dict[str, str]) -> None:
    for name, ics in events.items():
        response = session.put(calendar_url + name, data=ics.encode(), headers=ICS)
        assert response.status_code in (201, 204), response.text


# --- iCalendar -----------------------------------------------------------------------------


def stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def vevent(uid: str, start: datetime, minutes: int, extra: str = "") -> str:
    end = start + timedelta(minutes=minutes)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//slotbook bench//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261121T000000Z\r\n"
        f"DTSTART:{stamp(start)}\r\nDTEND:{stamp(end)}\r\nSUMMARY:Event {uid}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def events_for(
    rng: random.Random, prefix: str, first_day: datetime, singles: int, weekly: int, **spread
) -> dict[str, str]:
    """``singles`` one-off events over ``spread['single_days']`` days from ``first_day`` and
    ``weekly`` weekly events (COUNT ``spread['count']``) starting in the first
    ``spread['weekly_days']`` days; 30-120 minutes, 08:00-17:45 UTC, on a 15-minute grid."""
    events = {}
    for n in range(singles + weekly):
        recurring = n >= singles
        days = spread["weekly_days"] if recurring else spread["single_days"]
        start = first_day + timedelta(
            days=rng.randrange(days), hours=8, minutes=15 * rng.randrange(40)
        )
        extra = f"RRULE:FREQ=WEEKLY;COUNT={spread['count']}\r\n" if recurring else ""
        uid = f"{prefix}-{n}"
        events[f"{uid}.ics"] = vevent(uid, start, rng.choice((30, 45, 60, 90, 120)), extra)
    return events


# --- Slotbook ------------------------------------------------------------------------------


def link(user_id: int, base_url: str, username: str, password: str) -> int:
    """``add_caldav`` as a request runs it: one writing transaction, committed."""
    begin_write()
    connection_id = add_caldav(db.session.get(User, user_id), base_url, username, password).id
    db.session.commit()
    return connection_id


def sync_all(ids: list[int]) -> tuple[float, list[float], list[SyncReport]]:
    """Sync the connections one after the other; total wall time and each one's time."""
    each, reports = [], []
    started = time.perf_counter()
    for connection_id in ids:
        t0 = time.perf_counter()
        reports.append(sync_connection(connection_id))
        each.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    for report in reports:
        assert report.error is None and not report.warnings, report
    return total, each, reports


def measured(fn, radicale_pid: int):
    """Run ``fn``; return its result with (wall, our CPU, Radicale CPU) seconds."""
    wall, cpu, remote = time.perf_counter(), time.process_time(), cpu_seconds(radicale_pid)
    result = fn()
    return result, (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        cpu_seconds(radicale_pid) - remote,
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def row(label: str, value: str) -> None:
    print(f"| {label} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--refresh-runs", type=int, default=5)
    parser.add_argument("--big-events", type=int, default=2000)
    parser.add_argument("--full-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--profile", action="store_true", help="cProfile one no-change refresh")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="slotbook-bench-") as folder:
        root = Path(folder)
        radicale, base_url, htpasswd = start_radicale(root)
        try:
            run(args, rng, root, radicale, base_url, htpasswd)
        finally:
            radicale.terminate()
            radicale.wait(10)


def run(args, rng, root: Path, radicale: subprocess.Popen, base_url: str, htpasswd: Path):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1)

    # Radicale accounts and their events (not timed).
    started = time.perf_counter()
    accounts = [(f"bench{n:03d}", f"pw-{n}-{rng.randrange(10**9)}") for n in range(args.calendars)]
    big = ("bench-big", "pw-big")
    htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in [*accounts, big]))
    for username, password in accounts:
        with requests.Session() as session:
            session.auth = (username, password)
            url = f"{base_url}/{username}/work/"
            make_calendar(session, url, "Work")
            upload(
                session,
                url,
                events_for(rng, username, tomorrow, 7, 3, single_days=56, weekly_days=21, count=6),
            )
    singles = args.big_events * 9 // 10
    with requests.Session() as session:
        session.auth = big
        big_url = f"{base_url}/{big[0]}/work/"
        make_calendar(session, big_url, "Work")
        big_events = events_for(
            rng,
            "big",
            tomorrow,
            singles,
            args.big_events - singles,
            single_days=360,
            weekly_days=280,
            count=10,
        )
        upload(session, big_url, big_events)
    print(
        f"Uploaded {args.calendars} x 10 + {args.big_events} events to Radicale in "
        f"{time.perf_counter() - started:.1f} s (not part of the measurement)"
    )

    print(f"load average before the measurement: {os.getloadavg()[0]:.1f} (1 min)")
    app = create_app(TestConfig(f"sqlite:///{root}/bench.db"))
    with app.app_context():
        upgrade()
        begin_write()
        ensure_roles()
        set_setting("allow_private_calendar_urls", True)
        people = [
            create_user(f"agent{n:03d}@example.test", f"Agent {n:03d}", "agent")
            for n in range(args.calendars + 1)
        ]
        person_ids = [p.id for p in people]  # flushed: read before the commit expires them
        db.session.commit()

        started = time.perf_counter()
        ids = [
            link(person_ids[n], base_url, username, password)
            for n, (username, password) in enumerate(accounts)
        ]
        big_id = link(person_ids[-1], base_url, *big)
        linked = db.session.scalar(select(func.count()).select_from(LinkedCalendar))
        db.session.commit()
        assert linked == args.calendars + 1, linked
        print(f"Linked {linked} calendars with add_caldav in {time.perf_counter() - started:.1f} s")

        # Workload 1: first full sync, then refreshes with nothing changed.
        (first_total, _, first), first_cpu = measured(lambda: sync_all(ids), radicale.pid)
        refreshes = []
        for _ in range(args.refresh_runs):
            (total, each, reports), cpu = measured(lambda: sync_all(ids), radicale.pid)
            refreshes.append((total, each, reports, cpu))
        blocks_1 = db.session.scalar(select(func.count()).select_from(BusyBlock))
        db.session.commit()

        # Workload 2: the first full sync of the big calendar, then full re-reads.
        big_first, big_first_cpu = measured(lambda: sync_connection(big_id), radicale.pid)
        full_reads = []
        assert big_first.error is None and not big_first.warnings, big_first
        for _ in range(args.full_runs):
            begin_write()
            db.session.execute(
                LinkedCalendar.__table__.update()
                .where(LinkedCalendar.connection_id == big_id)
                .values(sync_cursor=None)
            )
            db.session.commit()
            report, cpu = measured(lambda: sync_connection(big_id), radicale.pid)
            assert report.error is None and report.added == big_first.added, report
            full_reads.append((report, cpu))
        big_refresh, big_refresh_cpu = measured(lambda: sync_connection(big_id), radicale.pid)

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            sync_all(ids)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats(os.environ.get("SORT", "cumulative")).print_stats(30)

    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min)")
    n = args.calendars
    totals = [r[0] for r in refreshes]
    per_calendar = sorted(t for r in refreshes for t in r[1])
    requests_each = {sum(rep.requests for rep in r[2]) / n for r in refreshes}
    changed = {
        (sum(rep.added for rep in r[2]), sum(rep.removed for rep in r[2])) for r in refreshes
    }
    median_run = sorted(refreshes, key=lambda r: r[0])[len(refreshes) // 2]
    first_requests = sum(rep.requests for rep in first) / n
    first_added = sum(rep.added for rep in first)
    print()
    print(f"Workload 1: {n} calendars, 10 events each, {blocks_1} busy blocks stored")
    print("| measure | value |")
    print("|---|---|")
    row(
        "first full sync, all calendars",
        f"{first_total:.2f} s ({ms(first_total / n)} per calendar, {first_requests:g} requests "
        f"per calendar, {first_added} blocks added)",
    )
    row(
        f"no-change refresh, all calendars ({len(refreshes)} runs)",
        f"median {statistics.median(totals):.2f} s, max {max(totals):.2f} s",
    )
    row(
        "no-change refresh, mean per calendar",
        f"{ms(statistics.median(totals) / n)} (median run)",
    )
    row(
        "no-change refresh, one calendar (all runs)",
        f"median {ms(statistics.median(per_calendar))}, "
        f"p95 {ms(per_calendar[int(len(per_calendar) * 0.95)])}, max {ms(per_calendar[-1])}",
    )
    row("HTTP requests per calendar, no-change refresh", ", ".join(f"{r:g}" for r in requests_each))
    row(
        "busy blocks added / removed, no-change refresh",
        ", ".join(f"{a} / {r}" for a, r in changed),
    )
    wall, ours, theirs = median_run[3]
    row(
        "CPU in the median refresh: Slotbook / Radicale",
        f"{ours:.2f} s / {theirs:.2f} s (wall {wall:.2f} s)",
    )
    wall, ours, theirs = first_cpu
    row("CPU in the first full sync: Slotbook / Radicale", f"{ours:.2f} s / {theirs:.2f} s")

    print()
    print(f"Workload 2: one calendar with {args.big_events} events")
    print("| measure | value |")
    print("|---|---|")
    wall, ours, theirs = big_first_cpu
    row(
        "first full sync",
        f"{wall:.2f} s, {big_first.requests} requests, {big_first.added} blocks added "
        f"(CPU Slotbook {ours:.2f} s / Radicale {theirs:.2f} s)",
    )
    if full_reads:
        walls = [cpu[0] for _, cpu in full_reads]
        row(
            f"full re-read, cursor dropped ({len(full_reads)} runs)",
            f"median {statistics.median(walls):.2f} s, max {max(walls):.2f} s, "
            f"{full_reads[0][0].requests} requests, {full_reads[0][0].removed} removed / "
            f"{full_reads[0][0].added} added",
        )
    row(
        "no-change refresh afterwards",
        f"{ms(big_refresh_cpu[0])}, {big_refresh.requests} requests, "
        f"{big_refresh.added} added / {big_refresh.removed} removed "
        f"(CPU Slotbook {ms(big_refresh_cpu[1])} / Radicale {ms(big_refresh_cpu[2])})",
    )


if __name__ == "__main__":
    main()
