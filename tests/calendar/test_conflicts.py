"""C3 conflict detection as a pure function: overlaps per person, touching is not a conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.scheduling.conflicts import Occupied, find_conflicts

T0 = datetime(2030, 1, 14, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def booking(key, person, start, end) -> Occupied:
    return Occupied(("b", key), person, at(start), at(end))


def busy(key, person, start, end) -> Occupied:
    return Occupied(("x", key), person, at(start), at(end))


def test_booking_overlapping_a_busy_block_of_its_person_conflicts():
    """10:00–11:00 against busy 10:30–11:30 of the same person: a conflict, named by key."""
    found = find_conflicts([booking(1, "ann", 1, 2)], [busy(7, "ann", 1.5, 2.5)])
    assert found == {("b", 1): [("x", 7)]}


def test_touching_intervals_do_not_conflict():
    """Half-open intervals: ending at 11:00 and starting at 11:00 is back to back, not a clash."""
    bookings = [booking(1, "ann", 1, 2), booking(2, "ann", 2, 3)]
    assert find_conflicts(bookings, [busy(7, "ann", 0, 1), busy(8, "ann", 3, 4)]) == {}


def test_two_bookings_of_one_person_conflict_both_ways():
    """Booking against booking marks both of them."""
    found = find_conflicts([booking(1, "ann", 1, 2), booking(2, "ann", 1.75, 3)])
    assert found == {("b", 1): [("b", 2)], ("b", 2): [("b", 1)]}


def test_other_peoples_time_is_not_a_conflict():
    """Only the booking's own people count: someone else's busy block or booking is fine."""
    found = find_conflicts(
        [booking(1, "ann", 1, 2), booking(2, "bob", 1, 2)], [busy(7, "cat", 1, 2)]
    )
    assert found == {}


def test_busy_blocks_never_conflict_with_each_other():
    """Two overlapping external events are just busy time, not a Slotbook conflict."""
    assert find_conflicts([], [busy(7, "ann", 1, 3), busy(8, "ann", 2, 4)]) == {}


def test_a_booking_held_by_two_people_is_checked_for_each_and_never_against_itself():
    """One entry per (booking, person): both people's calendars count, the booking is not a
    conflict with itself, and a clash found through two people is listed once."""
    bookings = [booking(1, "ann", 1, 2), booking(1, "bob", 1, 2), booking(2, "ann", 1, 2)]
    bookings.append(booking(2, "bob", 1, 2))
    found = find_conflicts(bookings, [busy(7, "bob", 0.5, 1.25)])
    assert found == {("b", 1): [("x", 7), ("b", 2)], ("b", 2): [("x", 7), ("b", 1)]}


def test_conflicts_are_listed_in_order_of_start_and_long_blocks_are_remembered():
    """A long busy block still running is found by a later booking; order follows start."""
    found = find_conflicts(
        [booking(1, "ann", 3, 4)],
        [busy(9, "ann", 3.5, 5), busy(7, "ann", 0, 8), busy(8, "ann", 1, 2)],
    )
    assert found == {("b", 1): [("x", 7), ("x", 9)]}


def test_empty_and_zero_length_entries_are_ignored():
    """Nothing in, nothing out; a zero-length entry occupies no time."""
    assert find_conflicts([]) == {}
    assert find_conflicts([booking(1, "ann", 1, 1)], [busy(7, "ann", 0, 2)]) == {}
