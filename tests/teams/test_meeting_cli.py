"""``flask connections set-microsoft-org`` (secret on stdin, checked against the tenant) and
``flask teams schedule`` (the window job, now) against the Microsoft stand-in."""

from __future__ import annotations

from sqlalchemy import select

from app.admin.settings import get_setting
from app.connections.models import Connection, ConnectionKind
from app.database import begin_write
from app.extensions import db
from tests.conftest import at
from tests.connections.test_cli import allow_private_urls
from tests.fakes import graph_server as _fake_microsoft
from tests.teams import meet_helpers
from tests.teams.meet_helpers import deliver_all, meeting_of, point_at

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
tenant = meet_helpers.tenant


def _invoke(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_set_microsoft_org_reads_the_secret_from_stdin(app, graph_server):
    allow_private_urls(app)
    point_at(app, graph_server)
    graph_server.add_user("ada@contoso.test", "Ada Agent")
    wrong = _invoke(
        app,
        "connections",
        "set-microsoft-org",
        "--tenant",
        graph_server.tenant_id,
        "--client-id",
        graph_server.client_id,
        input="not-the-secret\n",
    )
    assert wrong.exit_code != 0
    with app.app_context():
        assert db.session.scalars(select(Connection)).all() == []
    result = _invoke(
        app,
        "connections",
        "set-microsoft-org",
        "--tenant",
        graph_server.tenant_id,
        "--client-id",
        graph_server.client_id,
        "--show-event-details",
        input=graph_server.client_secret + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Saved the Microsoft 365 connection" in result.output
    assert graph_server.client_secret not in result.output
    with app.app_context():
        [connection] = db.session.scalars(select(Connection)).all()
        assert connection.kind == ConnectionKind.MICROSOFT_ORG
        assert connection.reveal_secret() == graph_server.client_secret
        assert get_setting("show_event_details") is True
        db.session.rollback()


def test_teams_schedule_pushes_what_entered_the_window(app, factory, tenant, graph_server):
    manager, ada, lee = tenant
    kind = factory.booking_type(name="Review", location_modes=["teams"])
    booking = factory.booking(manager, kind, at(4, 10), [ada], learner=lee, location_mode="teams")
    with app.app_context():
        begin_write()
        from app.admin.settings import set_setting

        set_setting("teams_scheduling_window_days", 3)
        db.session.commit()
    deliver_all(app)
    assert meeting_of(app, booking.id).state == "waiting"
    assert "Queued 0 Teams meetings" in _invoke(app, "teams", "schedule").output
    with app.app_context():
        begin_write()
        from app.admin.settings import set_setting

        set_setting("teams_scheduling_window_days", 5)
        db.session.commit()
    assert "Queued 1 Teams meeting for creation." in _invoke(app, "teams", "schedule").output
    deliver_all(app)
    assert meeting_of(app, booking.id).state == "scheduled"
    assert len(graph_server.teams_meetings_of(ada.email)) == 1
