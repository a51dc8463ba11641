"""Issue [14]: ``slots_for`` holds CPython's cyclic collector while it loads and runs the
engine, and switches it back on afterwards (also after an error), only if it was on."""

from __future__ import annotations

import gc
from datetime import time, timedelta

import pytest

from app.accounts import hours
from app.accounts.models import User
from app.bookings import availability
from app.bookings.models import BookingType
from app.database import begin_write
from app.extensions import db
from tests.conftest import at


@pytest.fixture
def kind_and_agent(app, factory):
    agent = factory.user("agent")
    kind = factory.booking_type()
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(
            db.session.get(User, agent.id), {d: [(time(9), time(17))] for d in range(7)}
        )
        db.session.commit()
    return kind.id, agent.id


def _slots(kind_id: int, agent_id: int) -> list:
    kind = db.session.get(BookingType, kind_id)
    agent = db.session.get(User, agent_id)
    day = next(d for d in range(3, 10) if at(d, 0).weekday() < 5)  # weekends are closed
    return availability.slots_for(kind, at(day, 0), at(day, 0) + timedelta(days=1), people=[agent])


def test_collector_is_held_while_loading_and_back_on_after(app, kind_and_agent, monkeypatch):
    seen = []
    real_find, real_load = availability.find_slots, availability.load_context
    monkeypatch.setattr(
        availability,
        "load_context",
        lambda *a, **k: seen.append(("load", gc.isenabled())) or real_load(*a, **k),
    )
    monkeypatch.setattr(
        availability,
        "find_slots",
        lambda *a, **k: seen.append(("engine", gc.isenabled())) or real_find(*a, **k),
    )
    assert gc.isenabled()
    with app.app_context():
        assert _slots(*kind_and_agent)  # the agent works every day: something is offered
    assert seen == [("load", False), ("engine", False)]
    assert gc.isenabled()


def test_collector_back_on_after_an_error_and_left_off_when_it_was(
    app, kind_and_agent, monkeypatch
):
    def fail(*_args, **_kwargs):
        raise RuntimeError("engine failed")

    monkeypatch.setattr(availability, "find_slots", fail)
    with app.app_context():
        with pytest.raises(RuntimeError):
            _slots(*kind_and_agent)
        assert gc.isenabled()
        gc.disable()
        try:
            with pytest.raises(RuntimeError):
                _slots(*kind_and_agent)
            assert not gc.isenabled()  # a caller that switched it off keeps it off
        finally:
            gc.enable()
