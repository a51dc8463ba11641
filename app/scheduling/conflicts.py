"""Which bookings clash with someone's other commitments (C3): a pure sweep, no database.

A booking conflicts when, for one of its internal people, it overlaps an external busy block
of that person or another active booking of that person. Intervals are half-open, so a
booking that ends at 11:00 and one that starts at 11:00 do not conflict. The caller decides
what counts (active statuses, blocking busy states); this module only finds the overlaps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import NamedTuple


class Occupied(NamedTuple):
    """One person's time taken by one thing: a booking or a busy block (``key`` names it).

    A tuple, not a dataclass: a busy week builds thousands of these per request."""

    key: Hashable
    person: Hashable
    start: datetime
    end: datetime


def find_conflicts(
    bookings: Iterable[Occupied], busy: Iterable[Occupied] = ()
) -> dict[Hashable, list[Hashable]]:
    """Map each conflicting booking key to the keys it overlaps, in order of their start.

    ``bookings`` holds one entry per (booking, person); ``busy`` one per busy block. Busy
    blocks never conflict with each other; a booking never conflicts with itself (a booking
    held by two people is two entries with the same key). Runs in O(n log n + overlaps) per
    person: a sweep over entries sorted by start with a list of those still running.
    """
    per_person: dict[Hashable, list[tuple[datetime, datetime, bool, Hashable]]] = defaultdict(list)
    for entry in bookings:
        if entry.start < entry.end:
            per_person[entry.person].append((entry.start, entry.end, True, entry.key))
    for entry in busy:
        if entry.start < entry.end and entry.person in per_person:
            per_person[entry.person].append((entry.start, entry.end, False, entry.key))

    found: dict[Hashable, dict[Hashable, datetime]] = defaultdict(dict)
    for entries in per_person.values():
        entries.sort(key=lambda e: (e[0], e[1]))
        running: list[tuple[datetime, datetime, bool, Hashable]] = []
        for start, end, is_booking, key in entries:
            running = [r for r in running if r[1] > start]  # strictly after: touching is fine
            for r_start, _r_end, r_is_booking, r_key in running:
                if r_key == key or not (is_booking or r_is_booking):
                    continue
                if is_booking:
                    found[key].setdefault(r_key, r_start)
                if r_is_booking:
                    found[r_key].setdefault(key, start)
            running.append((start, end, is_booking, key))
    return {
        key: [other for other, _ in sorted(others.items(), key=lambda kv: kv[1])]
        for key, others in found.items()
    }
