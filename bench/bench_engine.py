"""Benchmark of the pure availability engine (app/scheduling), not a test.

    python bench/bench_engine.py [--runs N] [--seed S]

30 agents, 4 weeks, ~300 busy blocks each (seeded random, anywhere in the day, 15-120 min,
overlapping allowed), Mon-Fri 09:00-17:00 Europe/London (one agent America/New_York), 60-min
duration on a 30-min grid, one-hour buffers split 15/15, a booking window with 2 h notice.
Times ``find_slots`` for the whole group (threshold 50 %, and "any one member", which builds
the most slots) and for each single person, and
prints median / p95 / max with ``time.perf_counter``. The first (cold) group run is reported
separately: it fills the memo of wall-clock → UTC conversions that a long-running server
keeps warm.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.scheduling.intervals import Interval
from app.scheduling.rules import BookingWindow, WorkingHours
from app.scheduling.slots import Person, SlotRequest, find_slots

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
AGENTS = 30
BUSY_PER_AGENT = 300
START = datetime(2025, 3, 17, tzinfo=UTC)  # a Monday; the range crosses the 30 March change
WEEKS = 4


def build(seed: int) -> tuple[list[Person], SlotRequest]:
    rng = random.Random(seed)
    end = START + timedelta(weeks=WEEKS)
    span_minutes = int((end - START).total_seconds() // 60)
    people = []
    for agent in range(1, AGENTS + 1):
        zone = NEW_YORK if agent == AGENTS else LONDON
        hours = WorkingHours(zone, {d: ((clock(9), clock(17)),) for d in range(5)})
        busy = []
        for _ in range(BUSY_PER_AGENT):
            at = START + timedelta(minutes=rng.randrange(0, span_minutes, 5))
            busy.append(Interval(at, at + timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120)))))
        rng.shuffle(busy)
        people.append(Person(agent, hours, busy=tuple(busy), load=rng.randrange(0, 20)))
    request = SlotRequest(
        start=START,
        end=end,
        now=START - timedelta(hours=3),
        duration=timedelta(minutes=60),
        window=BookingWindow(LONDON, minimum_notice=timedelta(hours=2)),
        interval=timedelta(minutes=30),
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=15),
        threshold=0.5,
    )
    return people, request


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    print(
        f"{name:<34} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   "
        f"max {samples[-1]:7.2f} ms   (n={len(samples)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    people, request = build(args.seed)

    t0 = time.perf_counter()
    slots = find_slots(people, request)
    cold = (time.perf_counter() - t0) * 1000
    print(
        f"{AGENTS} agents x {BUSY_PER_AGENT} busy blocks, {WEEKS} weeks, "
        f"{len(slots)} group slots (threshold 50 %); cold first run {cold:.2f} ms"
    )
    report("find_slots, 30-person group", timed(lambda: find_slots(people, request), args.runs))
    anyone = replace(request, threshold=0.0)  # any one member: the most slots to build
    print(f"  (any one member free: {len(find_slots(people, anyone))} group slots)")
    report(
        "find_slots, group, any one member", timed(lambda: find_slots(people, anyone), args.runs)
    )
    singles: list[float] = []
    for person in people:
        singles += timed(lambda p=person: find_slots([p], request), max(1, args.runs // 10))
    report("find_slots, one person (each of 30)", singles)


if __name__ == "__main__":
    main()
