"""``flask`` commands for self-hosters (SPEC I2, names fixed by I5)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from app.database import begin_write
from app.extensions import db


def register_cli(app: Flask) -> None:
    app.cli.add_command(create_owner)
    app.cli.add_command(demo)
    app.cli.add_command(tokens)
    app.cli.add_command(keys)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(settings)
    from app.connections.cli import connections, sync

    app.cli.add_command(connections)
    app.cli.add_command(sync)
    from app.notifications.cli import feeds

    app.cli.add_command(feeds)
    from app.accounts.people_cli import people

    app.cli.add_command(people)
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
    from app.teams.cli import teams

    app.cli.add_command(teams)


@click.command("create-owner")
@click.argument("email")
@click.option("--name", default="", help="Display name (defaults to the part before @).")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given.",
)
@click.option("--timezone", default="Europe/London", show_default=True)
@with_appcontext
def create_owner(email: str, name: str, password: str, timezone: str) -> None:
    """Create the first owner (or another one)."""
    from app.accounts.service import AccountError, create_user

    begin_write()
    try:
        user = create_user(email, name, "owner", password=password, timezone=timezone)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Owner {user.email} created. Sign in at /login.")


@click.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@with_appcontext
def demo_seed() -> None:
    """Load a realistic demo provider; running it again changes nothing."""
    from app.demo import seed

    created = seed()
    db.session.commit()
    if created:
        click.echo(f"Demo data loaded: {created}.")
    else:
        click.echo("Demo data is already present; nothing changed.")


@click.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="CLI", help="A label to recognise the token by.")
@with_appcontext
def tokens_create(email: str, name: str) -> None:
    """Print a new API token for EMAIL. It is shown once and stored only as a hash."""
    from app.accounts.service import create_api_token, find_user

    begin_write()
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"No user with the email {email}.")
    token = create_api_token(user, name)
    db.session.commit()
    click.echo(token)


@click.group()
def keys() -> None:
    """Encryption keys."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key for SLOTBOOK_ENCRYPTION_KEYS (put it first; keep old ones after it)."""
    from app.security import generate_key

    click.echo(generate_key())


@click.command("rotate-keys")
@with_appcontext
def rotate_keys() -> None:
    """Re-seal every stored secret with the first key of SLOTBOOK_ENCRYPTION_KEYS.

    Put the new key first (`flask keys generate`), keep the old one after it, run this, then
    remove the old key.
    """
    from app.connections.keys import reseal_all
    from app.security import DecryptionError

    try:
        resealed, total = reseal_all()
    except DecryptionError as exc:
        db.session.rollback()
        raise click.ClickException(
            f"A stored secret could not be opened ({exc}); keep every old key in "
            "SLOTBOOK_ENCRYPTION_KEYS until this command succeeds. Nothing was changed."
        ) from exc
    click.echo(f"Re-sealed {resealed} of {total} secret(s) with the newest key.")


@click.group()
def settings() -> None:
    """Organisation settings (typed; every default lives in app/admin/settings.py)."""


@settings.command("list")
@with_appcontext
def settings_list() -> None:
    """Print every setting with its current value."""
    import json

    from app.admin.settings import SETTINGS, all_settings

    for key, value in all_settings().items():
        marker = "" if value == SETTINGS[key].default else "  (changed)"
        click.echo(f"{key} = {json.dumps(value)}{marker}")


@settings.command("set")
@click.argument("key")
@click.argument("value")
@with_appcontext
def settings_set(key: str, value: str) -> None:
    """Set KEY to VALUE, given as JSON (true, 30, "text", ["a","b"]) or as plain text."""
    import json

    from app.admin.settings import SettingError, save_settings

    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    begin_write()
    try:
        save_settings({key: parsed}, actor_id=None)  # audited as a command-line change
    except SettingError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"{key} = {json.dumps(parsed)}")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def export_command(path: str) -> None:
    """Write the whole organisation to PATH as JSON (no passwords, tokens or credentials)."""
    import os

    from app.transfer import dump, export_document

    document = export_document(lambda name, count: click.echo(f"  {name}: {count}"))
    db.session.rollback()  # read-only; end the snapshot
    temporary = f"{path}.partial"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(dump(document))
        os.replace(temporary, path)  # a reader never sees half a file
    except OSError as exc:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise click.ClickException(f"Could not write {path}: {exc.strerror}.") from exc
    click.echo(
        f"Exported {len(document['people'])} people and {len(document['bookings'])} "
        f"bookings to {path}."
    )


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
@with_appcontext
def import_command(path: str) -> None:
    """Load an export into this EMPTY database, all or nothing, keeping every id."""
    from app.transfer import TransferError, import_document, parse

    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        document = parse(raw)
        summary = import_document(document, lambda name, count: click.echo(f"  {name}: {count}"))
    except TransferError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc} Nothing was imported.") from exc
    db.session.commit()
    total = sum(summary.counts.values())
    click.echo(
        f"Imported {total} rows: {summary.counts['people']} people, "
        f"{summary.counts['booking_types']} booking types, {summary.counts['bookings']} "
        f"bookings, {summary.counts['polls']} polls."
    )
    click.echo(
        'Imported people have no password: they sign in after "Forgot your password?" or '
        "a new invitation. API tokens, calendar feeds and linked calendars are not moved: "
        "create them again (`flask tokens create EMAIL`)."
    )
