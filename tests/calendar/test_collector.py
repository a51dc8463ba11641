"""Issue [14]: the calendar pauses CPython's cyclic garbage collector while it builds a week
(a full collection walked the whole process for nothing) and always switches it back on."""

from __future__ import annotations

import gc

import pytest

from app.calendar import routes
from tests.calendar.test_routes import team as team  # the fixture: a manager, two agents
from tests.conftest import login


def test_the_collector_is_paused_while_the_week_is_built(client, team, monkeypatch):
    """Off while the calendar loads, on again afterwards, page and fragment alike."""
    seen = []
    load = routes.load_calendar

    def spying(*args, **kwargs):
        seen.append(gc.isenabled())
        return load(*args, **kwargs)

    monkeypatch.setattr(routes, "load_calendar", spying)
    login(client, team["manager"].email)
    assert gc.isenabled()
    for headers in ({}, {"HX-Request": "true"}):
        assert client.get("/calendar", headers=headers).status_code == 200
        assert gc.isenabled()
    assert seen == [False, False]


def test_the_collector_is_back_on_after_an_error(client, team):
    """A bad query string (400) and a view the viewer may not use (403) end with it on."""
    login(client, team["manager"].email)
    assert client.get("/calendar?view=month").status_code == 400
    assert gc.isenabled()


def test_a_collector_already_off_is_left_to_its_owner(client, team):
    """Paused by someone else (a caller, another pause): the calendar does not switch it on."""
    login(client, team["manager"].email)
    gc.disable()
    try:
        assert client.get("/calendar").status_code == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.fixture(autouse=True)
def _collector_on():
    yield
    gc.enable()  # whatever a failing test left behind
