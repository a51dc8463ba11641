"""Issue [14]: ``slots_for`` holds CPython's cyclic collector while it loads and runs the
engine, and switches it back on afterwards (also after an error), only if it was on."""

from __future__ import annotations

import gc
import weakref
from contextlib import contextmanager
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


def test_the_engine_inputs_are_freed_before_the_collector_resumes(app, kind_and_agent, monkeypatch):
    """Containers allocated while the collector is off count towards its next collection
    until they are freed: were the engine's inputs (people, a tuple per busy pair) still
    alive when it came back on, resuming would set off a collection walking them on every
    request (0.3 ms at 30 agents x 8 weeks). They must be gone while it is still paused."""
    loaded, alive_at_resume = [], []
    real_pause, real_load = availability.collector_paused, availability.load_context

    def watched_load(*args, **kwargs):
        context = real_load(*args, **kwargs)
        loaded.append(weakref.ref(context))
        return context

    @contextmanager
    def watched_pause():
        with real_pause():
            yield
            alive_at_resume.append([ref() is not None for ref in loaded])

    monkeypatch.setattr(availability, "load_context", watched_load)
    monkeypatch.setattr(availability, "collector_paused", watched_pause)
    with app.app_context():
        assert _slots(*kind_and_agent)
    assert alive_at_resume == [[False]]
