"""Common free time for several people (A5, seed 003 group meetings).

Unlike a group booking (any ``threshold`` share of the group will do, one member gets the
booking), a meeting needs *every* required person; optional people are reported, not required,
so the organiser can pick the slot that suits most of them. Ranking is left to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.scheduling.slots import (
    Person,
    SlotRequest,
    _grid,
    _mark,
    _query,
    _shifts,
    _start_ranges,
)


@dataclass(frozen=True, order=True)
class CommonSlot:
    """A start at which all required people are free, and which optional ones are too."""

    start: datetime
    end: datetime
    optional_free: tuple[int, ...]


def common_slots(
    required: Sequence[Person], optional: Sequence[Person], request: SlotRequest
) -> list[CommonSlot]:
    """Starts (sorted by start) at which every required person is free.

    The grid comes from the required people's shifts only (optional people never add
    candidates); ``threshold`` is ignored. Each slot lists the optional people free for it
    by ascending id. No required people, or one whose data is unavailable, means no slots:
    we never propose a meeting time we cannot vouch for.
    """
    if not required or not all(p.available for p in required):
        return []
    q = _query(request)
    if not q.start < q.end:
        return []
    shifts = _shifts(required, q)
    candidates = _grid(shifts, q)
    if not candidates:
        return []
    hits: list[list[int]] = [[] for _ in candidates]
    for index, person in enumerate(required):
        ranges = _start_ranges(person, q, shifts[index])
        if not ranges:
            return []
        _mark(hits, candidates, index, ranges)
    need = len(required)
    extra: list[list[int]] = [[] for _ in candidates]
    for person in sorted(optional, key=lambda p: p.id):
        _mark(extra, candidates, person.id, _start_ranges(person, q))
    duration = q.duration
    return [
        CommonSlot(start, start + duration, tuple(extra[k]))
        for k, start in enumerate(candidates)
        if len(hits[k]) == need
    ]
