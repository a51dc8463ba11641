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

    from app.admin.settings import SettingError, set_setting

    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    begin_write()
    try:
        set_setting(key, parsed)
    except SettingError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"{key} = {json.dumps(parsed)}")
