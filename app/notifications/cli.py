"""``flask feeds …``: personal calendar feeds from the command line (F1)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.database import begin_write
from app.extensions import db


@click.group()
def feeds() -> None:
    """Personal calendar feeds."""


@feeds.command("rotate")
@click.argument("email")
@with_appcontext
def feeds_rotate(email: str) -> None:
    """Give EMAIL's user a new feed address and print it; the old one stops working at once.

    The address is shown only here: Slotbook stores just a hash of its token.
    """
    from app.accounts.service import find_user
    from app.notifications import feeds as service

    begin_write()
    user = find_user(email)
    if user is None:
        db.session.rollback()
        raise click.ClickException(f"No user with the email {email}.")
    if not user.active:
        db.session.rollback()
        raise click.ClickException(f"{user.email} is deactivated; their feed would not answer.")
    token = service.rotate(user)
    db.session.commit()
    click.echo(service.feed_url(token))
