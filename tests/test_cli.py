"""The ``flask`` commands self-hosters and scripts rely on (SPEC I2, I5)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from app.accounts.models import ApiToken, Group, Role, User
from app.bookings.models import Booking, BookingType, Status
from app.demo import DEMO_LOGINS, DEMO_PASSWORD
from app.extensions import db
from tests.conftest import PASSWORD, login


@pytest.fixture
def cli(app):
    """Invoke a command the way ``flask`` does: in a fresh app context of its own."""
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args), catch_exceptions=False)

    return invoke


# --- create-owner --------------------------------------------------------------------


def test_create_owner_who_can_sign_in(cli, app, client):
    result = cli("create-owner", "Founder@Example.test", "--password", PASSWORD, "--name", "Fay")
    assert result.exit_code == 0, result.output
    assert "Owner founder@example.test created" in result.output

    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "founder@example.test")).one()
        assert (user.name, user.role.slug) == ("Fay", "owner")
    login(client, "founder@example.test", PASSWORD)
    assert client.get("/").status_code == 302  # signed in: sent on to the bookings page


def test_create_owner_refuses_a_duplicate_email(cli, app):
    assert cli("create-owner", "owner@example.test", "--password", PASSWORD).exit_code == 0
    again = cli("create-owner", "OWNER@example.test", "--password", PASSWORD)
    assert again.exit_code != 0
    assert "already exists" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_create_owner_refuses_a_short_password(cli):
    result = cli("create-owner", "owner@example.test", "--password", "short")
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output


# --- demo seed -----------------------------------------------------------------------


def _counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, Booking, BookingType, Group, Role)
        }


def test_demo_seed_loads_a_realistic_provider_once(cli, app, client):
    first = cli("demo", "seed")
    assert first.exit_code == 0, first.output
    assert "Demo data loaded" in first.output
    counts = _counts(app)

    with app.app_context():

        def people(role: str) -> int:
            query = select(func.count()).select_from(User).join(Role).where(Role.slug == role)
            return db.session.scalar(query)

        assert people("agent") == 8
        assert people("learner") == 30
        assert people("employer") >= 3
        assert set(db.session.scalars(select(BookingType.name))) >= {
            "Planning meeting",
            "Assessment component",
            "Review",
            "Public appointment",
        }
        statuses = set(db.session.scalars(select(Booking.status).distinct()))
        assert statuses == {s.value for s in Status}
        planning = db.session.scalars(
            select(Group).where(Group.name == "Planning Meeting Bookings")
        ).one()
        assert planning.system and len(planning.members) > 0
        # invented history mails nobody: the seed's outbox rows are closed, not delivered
        from app.outbox import PENDING, OutboxMessage

        rows = db.session.scalars(select(OutboxMessage)).all()
        assert rows and not [r for r in rows if r.status == PENDING]
        assert {r.last_error for r in rows} == {"demo data: not delivered"}

    second = cli("demo", "seed")
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert _counts(app) == counts

    login(client, DEMO_LOGINS[0][0], DEMO_PASSWORD)


# --- tokens create -------------------------------------------------------------------


def test_tokens_create_prints_a_token_once_and_stores_only_its_hash(cli, app, factory):
    factory.user("agent", email="agent@example.test")
    result = cli("tokens", "create", "agent@example.test", "--name", "Zapier")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert len(token) >= 40 and "\n" not in token

    with app.app_context():
        row = db.session.scalars(select(ApiToken)).one()
        assert row.name == "Zapier"
        assert row.user.email == "agent@example.test"
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        # The plaintext is nowhere in the database, in any column of any table.
        for table in db.metadata.sorted_tables:
            for values in db.session.execute(table.select()):
                assert not any(token in str(value) for value in values), table.name

    second = cli("tokens", "create", "agent@example.test")
    assert second.exit_code == 0
    assert second.output.strip() != token


def test_tokens_create_for_an_unknown_email_fails(cli, app):
    result = cli("tokens", "create", "nobody@example.test")
    assert result.exit_code != 0
    assert "No user with the email nobody@example.test" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_keys_generate_prints_a_usable_key(cli):
    from app.security import KeyRing

    result = cli("keys", "generate")
    assert result.exit_code == 0
    KeyRing.from_config(result.output.strip())


def test_settings_set_changes_a_typed_setting_and_refuses_bad_values(cli, app):
    """`flask settings set` stores typed values, refuses wrong types and unknown keys."""
    from app.admin.settings import get_setting

    assert cli("settings", "set", "public_scheduling_enabled", "true").exit_code == 0
    assert cli("settings", "set", "reminder_minutes", "30").exit_code == 0
    assert cli("settings", "set", "organisation_name", "Northgate Training").exit_code == 0
    for bad in (("reminder_minutes", "soon"), ("weekends_enabled", "7"), ("no_such_key", "1")):
        result = cli("settings", "set", *bad)
        assert result.exit_code != 0
    with app.app_context():
        assert get_setting("public_scheduling_enabled") is True
        assert get_setting("reminder_minutes") == 30
        assert get_setting("organisation_name") == "Northgate Training"
        assert get_setting("weekends_enabled") is False  # the refused value changed nothing
    listing = cli("settings", "list").output
    assert "reminder_minutes = 30  (changed)" in listing
    assert 'day_start = "08:00"' in listing
