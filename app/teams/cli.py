"""``flask teams …`` (issue 12): run the Teams jobs now, from a shell or cron.

The group is shared: ``schedule`` (the scheduling window, T2) and ``attendance`` (T3) call the
same functions as the periodic jobs, so what a script does is what the worker does.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("teams")
def teams() -> None:
    """Microsoft Teams meetings."""


# --- the scheduling window (T2) ------------------------------------------------------------


@teams.command("schedule")
@with_appcontext
def schedule() -> None:
    """Queue the Teams meetings that entered the scheduling window now (what the periodic
    job does every teams_schedule_interval_hours); the worker then creates them."""
    from app.database import begin_write
    from app.extensions import db
    from app.teams.meetings import schedule_due

    begin_write()
    queued = schedule_due()
    db.session.commit()
    click.echo(f"Queued {queued} Teams meeting{'s' if queued != 1 else ''} for creation.")


# --- attendance → off-the-job minutes (T3) --------------------------------------------------


@teams.command("attendance")
@click.option("--booking", "booking_id", type=int, help="Only this booking's meeting.")
@with_appcontext
def attendance(booking_id: int | None) -> None:
    """Read ended Teams meetings' attendance and record off-the-job minutes (seed 001)."""
    from app.teams.attendance import run

    summary = run(booking_id=booking_id)
    for line in summary.lines:
        click.echo(line)
    if booking_id is not None and summary.checked == 0 and not summary.error:
        click.echo(
            f"Booking {booking_id} has nothing to check: it is not an ended Teams meeting with "
            "planned off-the-job minutes and open attendance."
        )
    click.echo(
        f"Checked {summary.checked}: {summary.recorded} recorded, {summary.needs_review} need "
        f"review, {summary.none} without the learner, {summary.pending} to try again."
    )
    if summary.error:
        raise click.ClickException(summary.error)
