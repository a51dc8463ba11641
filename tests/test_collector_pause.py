"""``app.database.collector_paused`` (issue [14]): off inside, on after, also after an error;
a collector that was already off (a nested pause, a caller's) stays off."""

from __future__ import annotations

import gc

import pytest

from app.database import collector_paused


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()  # whatever a failing test left behind


def test_off_inside_and_on_after_also_after_an_error():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a failing request")
    assert gc.isenabled()


def test_only_the_outermost_pause_switches_it_back_on():
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one left it to its owner
    assert gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()  # off before: left off
