"""Issue [09]: the demo's public booking offers times on its first load.

``make run`` seeds with ``flask demo seed`` and nothing else: no setting may need changing on
the command line before /book/public-appointment shows a time. The demo once seeded a public
desk whose three agents are never all free at once, and the default slot availability (100 %
of a group free) then offered nothing at all.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.bookings.availability import slots_for
from app.bookings.models import BookingType
from app.database import begin_write, utcnow
from app.extensions import db

SLOT_RE = re.compile(r'<input type="radio" name="start" value="([^"]+)"')
PUBLIC_TYPE = "public-appointment"


def test_demo_public_picker_offers_times_on_first_load(app, client):
    """Seeded the way `make run` does, on whatever day the test runs (the app's clock)."""
    result = app.test_cli_runner().invoke(args=["demo", "seed"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    response = client.get(f"/book/{PUBLIC_TYPE}")
    assert response.status_code == 200
    starts = SLOT_RE.findall(response.get_data(as_text=True))
    assert starts, "the demo's public picker offered no time on its first load"
    assert min(starts) > utcnow().isoformat()


@pytest.mark.parametrize("days_ahead", range(7))
def test_demo_offers_public_times_from_every_weekday(app, days_ahead):
    """Seeded on each weekday (Friday 4 Dec 2026 had none), the next week holds times: the
    picker's first load searches ahead from today and shows the first week with a time."""
    from app import demo

    today = utcnow() + timedelta(days=days_ahead)
    with app.app_context():
        begin_write()
        demo.seed(today=today)
        db.session.flush()
        kind = db.session.scalars(select(BookingType).where(BookingType.slug == PUBLIC_TYPE)).one()
        offered = slots_for(kind, today, today + timedelta(days=8), audience="public", now=today)
        db.session.rollback()
    assert offered, f"no public time in the week after {today:%A %d %B %Y}"
