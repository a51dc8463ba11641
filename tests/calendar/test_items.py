"""Issue [14]: ``cal_item`` writes exactly what the item macro (templates/calendar/_item.html)
wrote, for every kind of item, with and without a grid style, escaping the text fields."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from flask import render_template_string

from app.calendar.items import cal_item
from app.calendar.queries import Item, Segment

MACRO = (
    '{% from "calendar/_item.html" import item %}'
    "{{ item(seg, base) }}|{{ item(seg, base, 'grid-row: 3 / 5; --x: 0; --w: 70.0; ') }}"
)


def _items():
    at = datetime(2030, 3, 18, 9, tzinfo=UTC)
    titles = ("Review", '<b>"Tom" & Jerry</b>', "[PENDING] Planning")
    for kind, status, title, conflicts, detail in itertools.product(
        ("booking", "hidden", "busy"),
        ("confirmed", "provisional", "completed", "cancelled", "busy", "tentative", "oof"),
        titles,
        ((), ("Busy 10:00–11:00 (<Ann>)", "Review 09:00–10:00")),
        ("", "Lee <Learner>"),
    ):
        if kind != "booking" and status in ("confirmed", "provisional", "completed", "cancelled"):
            continue
        yield Item(
            kind,
            at,
            at,
            title,
            status,
            "09:00–10:00",
            booking_id=42 if kind == "booking" else None,
            detail=detail,
            colour="#2457a7",
            conflicts=conflicts,
        )


def test_cal_item_writes_what_the_macro_wrote(app):
    count = 0
    with app.test_request_context():
        for it in _items():
            for all_day in (False, True):
                seg = Segment(it, 540, 600, all_day)
                expected = render_template_string(MACRO, seg=seg, base="/bookings/")
                ours = (
                    f"{cal_item(seg, '/bookings/')}|"
                    f"{cal_item(seg, '/bookings/', 'grid-row: 3 / 5; --x: 0; --w: 70.0; ')}"
                )
                assert ours == expected
                count += 1
    assert count > 100
