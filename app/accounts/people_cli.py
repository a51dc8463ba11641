"""``flask people add|import|list`` (SPEC I2; the names are fixed by I5).

The same service as the people screens (``app/accounts/people.py``), acting as the system:
every role may be given, and the CSV import is all or nothing in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from app.database import begin_write
from app.extensions import db


@click.group("people")
def people() -> None:
    """People: add one, import many from CSV, list."""


@people.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Display name.")
@click.option("--role", required=True, help="Role slug, e.g. agent, learner, administrator.")
@click.option("--timezone", default="Europe/London", show_default=True, help="IANA zone name.")
@click.option("--invite", is_flag=True, help="Email them a link to set their password.")
@with_appcontext
def add(email: str, name: str, role: str, timezone: str, invite: bool) -> None:
    """Add one person."""
    from app.accounts.people import create_person
    from app.accounts.service import AccountError

    begin_write()
    try:
        person = create_person(
            None, email=email, name=name, role=role, timezone=timezone, invite=invite
        )
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    invited = "; an invitation email is on its way" if invite else ""
    click.echo(f"Added {person.email} ({person.role.name}, {person.timezone}){invited}.")


@people.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and write nothing.")
@with_appcontext
def import_csv(file: Path, dry_run: bool) -> None:
    """Add everyone in a CSV file (columns email,name,role,timezone,groups; groups separated
    by ;), or nobody: each bad row is printed with its line number and nothing is written."""
    from app.accounts.people import import_people, parse_people_csv
    from app.accounts.service import AccountError

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.ClickException("Save the file as UTF-8 CSV.") from exc
    if not dry_run:
        begin_write()  # before the checks, so no one else writes between check and import
    preview = parse_people_csv(text)
    if not preview.ok:
        db.session.rollback()
        for line, problem in preview.problems:
            where = f"line {line}" if line is not None else file.name
            click.echo(f"{where}: {problem}", err=True)
        bad = len(preview.bad_rows)
        raise click.ClickException(
            f"Nothing was written: {bad} bad row{'s' if bad != 1 else ''} of {len(preview.rows)}."
        )
    if dry_run:
        db.session.rollback()
        click.echo(f"All {len(preview.rows)} rows are fine; nothing was written (dry run).")
        return
    try:
        created = import_people(None, preview)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Imported {len(created)} people.")


@people.command("list")
@click.option("--role", default=None, help="Only this role (slug).")
@click.option("--search", default=None, help="A part of the name or email.")
@click.option("--all", "everyone", is_flag=True, help="Include deactivated people.")
@with_appcontext
def list_people(role: str | None, search: str | None, everyone: bool) -> None:
    """Print everyone (email, name, role, time zone, status), one per line, tab-separated."""
    from app.accounts.people import people_query

    query = people_query(search, role, active=None if everyone else True)
    count = 0
    for person in db.session.scalars(query):
        status = "active" if person.active else "deactivated"
        click.echo(
            "\t".join([person.email, person.name, person.role.slug, person.timezone, status])
        )
        count += 1
    click.echo(f"{count} {'person' if count == 1 else 'people'}.", err=True)
