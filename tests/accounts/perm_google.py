"""Permission-table builders for the Google routes of issue [12].

The personal routes (``/me/calendars/google`` and its callback) need only a signed-in user:
"Connect Google account" stores the sign-in flow in the session and redirects to the local
Google stand-in (listed in ``SESSION_ONLY_POSTS``); a callback this browser did not start
links nothing. The two admin forms need ``integrations.manage``; the Workspace form keeps
the key saved beforehand (a blank file keeps it) and changes the domains.
"""

from __future__ import annotations

from app.accounts.permissions import Perm

NEED = Perm.INTEGRATIONS_MANAGE
Req = None  # set by register(): the shared request type of tests/accounts/conftest.py


def _google_row(world):
    """The organisation's Google row on the local stand-in: OAuth client and a service
    account key (made once per world)."""
    from sqlalchemy import select

    from app.connections import service
    from app.connections.models import Connection, ConnectionKind
    from app.database import begin_write
    from app.extensions import db

    fake = world.fixture("google_server")
    world.app.config.update(**fake.config())
    with world.app.app_context():
        begin_write()
        exists = db.session.scalars(
            select(Connection.id).where(Connection.kind == ConnectionKind.GOOGLE_ORG)
        ).first()
        if exists is None:
            service.save_google_client(fake.client_id, fake.client_secret)
            service.save_google_workspace(fake.service_account_info(), ["perm.example"])
        db.session.commit()
    return fake


def _start(world, holder, actor):
    _google_row(world)
    return [Req("calendars:google", "POST", "/me/calendars/google", {}, 303)]


def _callback(world, holder, actor):
    url = "/me/calendars/google/callback?code=abc&state=not-started-here"
    return [Req("calendars:google-callback", "GET", url, ok=303)]


def _client_save(world, holder, actor):
    fake = _google_row(world)
    data = {"client_id": fake.client_id, "client_secret": "another-secret"}
    return [
        Req(
            "admin-calendars:google-client",
            "POST",
            "/admin/calendars/google/client",
            data,
            303,
            NEED,
        )
    ]


def _workspace_save(world, holder, actor):
    _google_row(world)
    data = {"domains": f"perm{next(world._days)}.example"}
    url = "/admin/calendars/google/workspace"
    return [Req("admin-calendars:google-workspace", "POST", url, data, 303, NEED)]


def register(tables: dict) -> None:
    """Add this area's routes to the permission tables."""
    global Req
    Req = tables["Req"]
    tables["LOGIN_ONLY_BUILDERS"].update(
        {"connections.google_start": _start, "connections.google_callback": _callback}
    )
    guarded = {
        "connections.google_client_save": _client_save,
        "connections.google_workspace_save": _workspace_save,
    }
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(guarded, NEED))
    tables["GUARDED_BUILDERS"].update(guarded)
