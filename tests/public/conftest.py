"""A public world: one agent with Mon-Sun 09:00-17:00 hours and one public booking type."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from


def set_settings(app, **values):
    from app.admin.settings import set_setting
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        for key, value in values.items():
            set_setting(key, value)
        db.session.commit()


@pytest.fixture
def public(app, factory):
    """Public scheduling on, weekends offered, an agent in Europe/London, a public type."""
    agent = factory.user("agent", email="agent@example.test", name="Agnes Agent")
    kind = factory.booking_type(
        slug="consultation",
        name="Consultation",
        bookable_by=["public"],
        duration_minutes=60,
        weekends_enabled=True,
        availability_source="group",
    )
    from app.accounts.models import Group, User
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        group = Group(slug="public-team", name="Public team")
        group.members.append(db.session.get(User, agent.id))
        db.session.add(group)
        db.session.flush()
        db.session.get(BookingType, kind.id).availability_group_id = group.id
        db.session.commit()
    set_settings(
        app,
        public_scheduling_enabled=True,
        weekends_enabled=True,
        earliest_day_public=1,
        max_bookings_per_contact_per_day=5,
        contact_required_fields="email",
    )
    return {"agent": agent, "kind": kind}


def first_slot(app, kind, after_days: int = 2) -> datetime:
    """An offered start (UTC) at least ``after_days`` days ahead."""
    from app.bookings.models import BookingType
    from app.extensions import db
    from app.public.service import offered_slots

    with app.app_context():
        start = datetime.combine(
            datetime.now(UTC).date() + timedelta(days=after_days), time(0), UTC
        )
        slots = offered_slots(
            db.session.get(BookingType, kind.id), start, start + timedelta(days=7)
        )
        db.session.rollback()
    assert slots, "the public world offers no slots"
    return slots[0].start


def book_form(client, slug, start, **fields):
    token = csrf_from(client, f"/book/{slug}?tz=UTC")
    data = {
        "csrf_token": token,
        "tz": "UTC",
        "start": start.isoformat(),
        "name": "Vera Visitor",
        "email": "vera@example.test",
        "phone": "",
        "website": "",
    }
    data.update(fields)
    return client.post(f"/book/{slug}", data=data)


def outbox(app, kind: str) -> list[dict]:
    from app.extensions import db
    from app.outbox import OutboxMessage

    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        ).all()
        payloads = [r.data for r in rows]  # the payload with its sealed links opened
        db.session.rollback()
    return payloads


def token_from(url: str) -> str:
    return re.search(r"/book/(?:manage|confirm)/([^/?#]+)", url).group(1)


def count(app, model) -> int:
    from sqlalchemy import func

    from app.extensions import db

    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
    return n
