"""K3: after linking, a dump of the whole database holds no password, token or feed key in
plain text; rotating the encryption key keeps every connection working."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest
from sqlalchemy import select

from app.connections.models import Connection
from app.connections.sync import sync_connection
from app.database import begin_write
from app.extensions import db
from app.security import KeyRing, generate_key
from tests.connections import test_linking as linking
from tests.connections.test_cli import allow_private_urls, default_feed
from tests.fakes import graph_server as _fake_microsoft

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
microsoft = linking.microsoft
ics_server = linking.ics_server

pytestmark = pytest.mark.db


def dump(database_url: str) -> str:
    """Every byte a backup would hold, as text."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return "\n".join(conn.iterdump())
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump (postgresql-client) is needed for the PostgreSQL run"
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(
        [pg_dump, "--data-only", url], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def linked(app, factory, caldav_account, ics_server, microsoft):
    """Ada linked CalDAV, a private ICS feed and her own Microsoft account; the organisation
    set up Microsoft 365. Returns (connection ids, every secret involved)."""
    allow_private_urls(app)
    ada = factory.user("agent", email="ada@contoso.test", name="Ada Agent")
    microsoft.add_user(ada.email)
    microsoft.add_user("ada@outlook.test")
    ids = [linking.save_org(app, microsoft)]
    ids.append(linking.link_caldav(app, ada, caldav_account))
    feed = ics_server.publish("/private.ics", default_feed()) + "?key=feedkey-s3cr3t"
    ids.append(linking.link_ics(app, ada, feed))
    from app.connections import service
    from app.connections.providers.graph import LinkedAccount

    token = microsoft.issue_refresh_token("ada@outlook.test")
    account = LinkedAccount(token, "ada@outlook.test", "Ada at home")
    ids.append(
        linking.call(app, lambda: service.finish_microsoft_link(linking.as_user(ada.id), account))
    )
    secrets = [caldav_account.password, "feedkey-s3cr3t", microsoft.client_secret, token]
    return ids, secrets


def sync_all(app, ids) -> list[str | None]:
    with app.app_context():
        errors = [sync_connection(i).error for i in ids]
        db.session.remove()
        return errors


def test_database_dump_holds_no_plaintext_secret(app, database_url, linked, microsoft):
    ids, secrets = linked
    assert sync_all(app, ids) == [None] * 4  # syncing rotates the Microsoft refresh token
    secrets += list(microsoft._refresh)  # every refresh token the fake ever issued
    text = dump(database_url)
    assert "calendar_connections" in text or "INSERT" in text  # the dump is real
    for secret in secrets:
        assert secret not in text
    with app.app_context():
        sealed = db.session.scalars(select(Connection.secret_sealed)).all()
        assert len(sealed) == 4 and all(s.startswith("v1.") for s in sealed)


def test_rotating_keys_keeps_every_connection_working(app, linked):
    ids, _ = linked
    old = app.config["SLOTBOOK_ENCRYPTION_KEYS"]
    new = generate_key()
    new_id = KeyRing.from_config(new).current_id

    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = f"{new},{old}"  # new key first, old kept
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "Re-sealed 4 of 4 secret(s)" in result.output
    with app.app_context():
        sealed = db.session.scalars(select(Connection.secret_sealed)).all()
        assert {s.split(".")[1] for s in sealed} == {new_id}
        db.session.rollback()

    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = new  # the old key is gone for good
    assert sync_all(app, ids) == [None] * 4


def test_lazy_reseal_on_read_and_a_missing_key_is_an_error_not_a_crash(app, linked):
    ids, _ = linked
    old = app.config["SLOTBOOK_ENCRYPTION_KEYS"]
    new = generate_key()
    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = f"{new},{old}"
    caldav_id = ids[1]
    assert sync_all(app, [caldav_id]) == [None]  # read with the old key, re-sealed with new
    with app.app_context():
        sealed = db.session.get(Connection, caldav_id).secret_sealed
        assert sealed.split(".")[1] == KeyRing.from_config(new).current_id
        db.session.rollback()

    app.config["SLOTBOOK_ENCRYPTION_KEYS"] = generate_key()  # a key that opens nothing
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code != 0 and "Nothing was changed" in result.output
    [error] = sync_all(app, [caldav_id])
    assert "encryption key that sealed them is no longer in SLOTBOOK_ENCRYPTION_KEYS" in error
    with app.app_context():
        begin_write()
        assert db.session.get(Connection, caldav_id).failure_count == 1
        db.session.rollback()
