"""Shared set-up for the Teams meeting tests: the app pointed at the local Microsoft
stand-in, its organisation connection saved and synced, and the outbox run as a worker
would run it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import outbox
from app.bookings.models import Booking
from app.connections import service as connections
from app.connections.sync import sync_due
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from app.teams.models import OnlineMeeting
from tests.connections.test_cli import allow_private_urls
from tests.connections.test_linking import CALLBACK


def point_at(app, graph_server) -> None:
    app.config.update(
        MS_AUTHORITY_HOST=graph_server.authority_host,
        MS_GRAPH_URL=graph_server.graph_url,
        SLOTBOOK_BASE_URL="http://localhost",
    )
    graph_server.redirect_uris.add(CALLBACK)


def call(app, fn, *args, **kwargs):
    """Run a service function as a request would: one writing transaction, committed."""
    with app.app_context():
        begin_write()
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return result.id if hasattr(result, "id") else result


def connect_org(app, graph_server, *emails: str) -> None:
    """The tenant knows ``emails``; the organisation connection is saved and synced."""
    allow_private_urls(app)
    point_at(app, graph_server)
    for email in emails:
        graph_server.add_user(email, email.split("@")[0].title())
    call(
        app,
        lambda: connections.save_organisation_connection(
            graph_server.tenant_id, graph_server.client_id, graph_server.client_secret, False
        ),
    )
    with app.app_context():
        assert [r.error for r in sync_due()] == [None] * 1
    deliver_all(app)


def deliver_all(app) -> list[str]:
    """Every pending non-mail outbox row once, including rows those deliveries emit."""
    seen: set[int] = set()
    statuses: list[str] = []
    with app.app_context():
        while True:
            ids = [
                i
                for i in db.session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == outbox.PENDING)
                    .where(OutboxMessage.kind.not_like("notify.%"))
                    .order_by(OutboxMessage.id)
                )
                if i not in seen
            ]
            db.session.rollback()
            if not ids:
                break
            seen.update(ids)
            statuses += [outbox.deliver(i) for i in ids]
        db.session.remove()
    return statuses


def meeting_of(app, booking_id: int) -> OnlineMeeting | None:
    with app.app_context():
        row = db.session.scalar(select(OnlineMeeting).where(OnlineMeeting.booking_id == booking_id))
        db.session.commit()
        return row


def booking_row(app, booking_id: int) -> Booking:
    with app.app_context():
        row = db.session.get(Booking, booking_id)
        _ = row.online_meeting, row.audit_entries
        db.session.commit()
        return row


@pytest.fixture
def tenant(app, factory, graph_server):
    """A manager, Ada (agent, organiser) and Lee (learner), all in the tenant, and the
    organisation connection set up against the stand-in."""
    return tenant_people(app, factory, graph_server)


def tenant_people(app, factory, graph_server):
    """What the ``tenant`` fixture gives, for modules that cannot use the fixture."""
    manager = factory.user("booking-manager", email="mo@contoso.test", name="Mo Manager")
    ada = factory.user("agent", email="ada@contoso.test", name="Ada Agent")
    lee = factory.user("learner", email="lee@contoso.test", name="Lee Learner")
    connect_org(app, graph_server, ada.email, manager.email, lee.email)
    return manager, ada, lee
