"""Permission-table builders for the organiser's polls of issue 15 ("My polls" and closing a
poll). ``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py``. Closing is guarded per poll like the poll's own page: 404
unless the sender organised it or holds bookings.view_all; each request closes a fresh poll.
"""

from __future__ import annotations

from app.accounts.permissions import Perm


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    req = tables["Req"]

    def index(world, holder, actor):
        return [req("polls:index", "GET", "/polls", permission=Perm.BOOKINGS_CREATE)]

    def close(world, holder, actor):
        from tests.accounts.conftest import _Id, _object, _poll

        poll_id, _, _ = _poll(world, holder)
        url = f"/polls/{poll_id}/close"
        return [
            _object("poll:close-confirm", "GET", url, _Id(poll_id), None, 200, holder, actor),
            _object("poll:close", "POST", url, _Id(poll_id), None, 303, holder, actor),
        ]

    tables["GUARDED_PERMISSIONS"]["polls.index"] = Perm.BOOKINGS_CREATE
    tables["GUARDED_BUILDERS"]["polls.index"] = index
    tables["OBJECT_BUILDERS"]["polls.close"] = close
