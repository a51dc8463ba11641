"""``flask connections …`` and ``flask sync run`` (SPEC I2; the names are fixed by I5).

The same service functions as the linking screens, so a calendar linked from a script is
checked against its server exactly like one linked in the browser. Passwords are read from
stdin when it is not a terminal (scripts), else asked for with a hidden prompt; they are
never accepted as an option, which would leave them in shell history and ``ps`` output.
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db


@click.group("connections")
def connections() -> None:
    """Linked calendars."""


def _user(email: str):
    from app.accounts.service import find_user

    user = find_user(email)
    if user is None:
        raise click.ClickException(f"No user with the email {email}.")
    return user


def _read_password() -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("App-specific password", hide_input=True)
    if not password:
        raise click.ClickException("No password given (pipe it on stdin or type it).")
    return password


def _linked(connection) -> None:
    count = len(connection.calendars)
    click.echo(
        f"Linked connection {connection.id} “{connection.label}” with {count} "
        f"calendar{'s' if count != 1 else ''}: " + ", ".join(c.name for c in connection.calendars)
    )


@connections.command("add-caldav")
@click.argument("email")
@click.option("--url", required=True, help="The CalDAV server address.")
@click.option("--username", required=True, help="The login at the CalDAV server.")
@with_appcontext
def add_caldav(email: str, url: str, username: str) -> None:
    """Link a CalDAV account to EMAIL's user (password on stdin, or asked for)."""
    from app.connections.service import LinkError
    from app.connections.service import add_caldav as link

    password = _read_password()
    try:
        connection = link(_user(email), url, username, password)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    _linked(connection)


@connections.command("add-ics")
@click.argument("email")
@click.argument("url")
@with_appcontext
def add_ics(email: str, url: str) -> None:
    """Subscribe EMAIL's user to a read-only ICS feed at URL."""
    from app.connections.service import LinkError
    from app.connections.service import add_ics as link

    try:
        connection = link(_user(email), url)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    _linked(connection)


@connections.command("set-microsoft-org")
@click.option("--tenant", required=True, help="The tenant id (GUID) or domain.")
@click.option("--client-id", required=True, help="The app registration's client id.")
@click.option(
    "--show-event-details/--hide-event-details",
    default=None,
    help="Show organisation events' titles to staff (unchanged when not given).",
)
@with_appcontext
def set_microsoft_org(tenant: str, client_id: str, show_event_details: bool | None) -> None:
    """Set up the organisation's Microsoft 365 connection (K1; Teams meetings use it too).

    The client secret is read from stdin (or asked for); it is checked by listing the
    tenant's users before anything is saved, exactly as on the Calendars screen.
    """
    from app.admin.settings import get_setting
    from app.connections.service import LinkError, save_organisation_connection
    from app.database import begin_write

    if sys.stdin is not None and not sys.stdin.isatty():
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Client secret", hide_input=True, default="", show_default=False)
    if show_event_details is None:
        show_event_details = bool(get_setting("show_event_details"))
    try:
        begin_write()
        connection = save_organisation_connection(tenant, client_id, secret, show_event_details)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Saved the Microsoft 365 connection {connection.id} for tenant {connection.tenant_id}; "
        "its calendars are read by the next sync."
    )


@connections.command("list")
@with_appcontext
def list_connections() -> None:
    """Every connection: id, owner, kind, label or address (never a secret), calendars,
    last success and state."""
    from app.connections.service import all_connections, display_url, health_of

    rows = all_connections()
    health = health_of(c for c, _ in rows)
    table = [("ID", "OWNER", "KIND", "LABEL / URL", "CALENDARS", "LAST SUCCESS", "STATE")]
    for connection, owner in rows:
        shown = display_url(connection.url) or connection.label
        success = connection.last_success_at
        table.append(
            (
                str(connection.id),
                owner.email if owner else "(organisation)",
                connection.kind,
                shown,
                str(len(connection.calendars)),
                success.strftime("%Y-%m-%d %H:%M UTC") if success else "never",
                health[connection.id].state,
            )
        )
    db.session.rollback()
    if len(table) == 1:
        click.echo("No calendar connections yet.")
        return
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


@connections.command("set-google-org")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="The service account's JSON key, as downloaded from Google Cloud.",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    required=True,
    help="A Google Workspace domain whose people are covered (repeat for several).",
)
@with_appcontext
def set_google_org(key_file: str, domains: tuple[str, ...]) -> None:
    """Set the organisation's Google Workspace link (issue [12]): a service account with
    domain-wide delegation and the domains it covers. The key is sealed with the key ring;
    the file itself is not kept, so delete it once this succeeds."""
    from app.admin.settings import get_setting
    from app.connections import service
    from app.connections.service import LinkError
    from app.database import begin_write

    with open(key_file, "rb") as handle:
        raw = handle.read(service.MAX_KEY_FILE + 1)
    try:
        key = service.parse_service_account_key(raw)
        checked = service.parse_domains(list(domains))
        begin_write()
        row = service.save_google_workspace(key, checked)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Google Workspace connection {row.id} saved for {row.username}, covering "
        + ", ".join(checked)
        + ". It syncs within a minute (or run: flask sync run)."
    )
    if get_setting("primary_calendar_provider") == "microsoft":
        click.echo(
            "Note: the primary calendar provider is Microsoft 365, so Google Workspace covers "
            "nobody yet. Choose google or both: flask settings set primary_calendar_provider "
            "google"
        )
    db.session.rollback()


@click.group("sync")
def sync() -> None:
    """The busy cache."""


@sync.command("run")
@click.option("--user", "email", default=None, help="Only this user's own connections.")
@with_appcontext
def sync_run(email: str | None) -> None:
    """Sync every connection now (or one user's) and summarise what changed; exits with 1 if
    any connection failed."""
    from app.connections.models import Connection
    from app.connections.sync import sync_connection

    query = select(Connection.id).order_by(Connection.id)
    if email:
        query = query.where(Connection.user_id == _user(email).id)
    ids = list(db.session.scalars(query))
    db.session.commit()  # end the read: each sync runs its own transactions
    if not ids:
        click.echo("No calendar connections to sync.")
        return
    reports = []
    with click.progressbar(ids, label="Syncing calendars", file=sys.stderr) as bar:
        for connection_id in bar:
            reports.append(sync_connection(connection_id))
    _summarise(reports)
    if any(r.error for r in reports):
        click.get_current_context().exit(1)


def _summarise(reports) -> None:
    added = sum(r.added for r in reports)
    removed = sum(r.removed for r in reports)
    warnings = [(r.connection_id, w) for r in reports for w in r.warnings]
    errors = [(r.connection_id, r.error) for r in reports if r.error]
    click.echo(
        f"Synced {len(reports)} connection{'s' if len(reports) != 1 else ''}: "
        f"{added} busy block{'s' if added != 1 else ''} added, {removed} removed, "
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}, "
        f"{len(errors)} error{'s' if len(errors) != 1 else ''}."
    )
    for connection_id, warning in warnings:
        click.echo(f"  warning, connection {connection_id}: {warning}")
    for connection_id, error in errors:
        click.echo(f"  error, connection {connection_id}: {error}")
