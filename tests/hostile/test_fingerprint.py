"""The sweep's "nothing written" check must see a write: a digest that never changed would
let every hostile request pass."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import changed_tables, db_fingerprint

pytestmark = pytest.mark.db


def test_a_written_row_and_an_updated_one_change_their_table_only(app, factory):
    person = factory.user("agent", "fingerprint@example.test")
    before = db_fingerprint(app)
    assert changed_tables(before, db_fingerprint(app)) == []

    factory.user("agent", "second@example.test")
    after_insert = db_fingerprint(app)
    assert "users" in changed_tables(before, after_insert)

    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        db.session.get(User, person.id).name = "Renamed"
        db.session.commit()
    assert changed_tables(after_insert, db_fingerprint(app)) == ["users"]
