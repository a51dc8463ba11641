"""Notification screens: the bell and list of one's own notifications (``/me/notifications``)
and the admin's channel matrix and failed sends (``/admin/notifications``).

Thin by design: load, authorise, call ``inapp`` or ``admin``, commit, render. Every
notification id is checked against the signed-in person (another person's id is a 404).
HTMX posts get the refreshed fragment back (with the bell's count swapped out of band); the
same forms work without JavaScript through a redirect and a flash message.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.extensions import db, login_manager
from app.htmx import render, wants_fragment
from app.notifications import admin as admin_service
from app.notifications import inapp
from app.notifications.rules import CHANNEL_LABELS, Channel
from app.notifications.sms import gateway_configured
from app.outbox import enqueue_ids

bp = Blueprint("notifications", __name__)
log = logging.getLogger(__name__)

# htmx stops polling when an answer has this status (a signed-out tab stops asking).
STOP_POLLING = 286


@bp.app_context_processor
def _bell() -> dict:
    """``bell_poll_seconds`` and ``bell_unread()`` for ``base.html`` (queried only when the
    bell is actually rendered, i.e. on full pages for signed-in people)."""

    def unread() -> int:
        if not current_user.is_authenticated:
            return 0
        try:
            return inapp.unread_count(current_user.id)
        except SQLAlchemyError:  # an error page after a failed transaction still renders
            log.warning("could not count unread notifications", exc_info=True)
            return 0

    seconds = current_app.config.get("SLOTBOOK_BELL_POLL_SECONDS") or 15
    return {"bell_unread": unread, "bell_poll_seconds": max(1, int(seconds))}


# --- my notifications ------------------------------------------------------------------


def _list(message: str | None = None, status: int = 200):
    unread = inapp.unread_count(current_user.id)
    response = render(
        "notifications/index.html",
        "notifications/_list.html",
        status,
        notifications=inapp.latest(current_user.id),
        unread=unread,
        link_for=inapp.link_for,
        message=message,
        oob_count=wants_fragment(),
        page_size=inapp.PAGE_SIZE,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _after_change(message: str):
    if wants_fragment():
        return _list(message)
    flash(message, "success")
    return redirect(url_for("notifications.index"), 303)


@bp.get("/me/notifications")
@login_required
def index():
    return _list()


@bp.get("/me/notifications/count")
def count():
    """The bell's badge, polled by htmx: one indexed COUNT. Nothing to swap (204) while the
    number is the one the page already shows (``seen``), so the live region stays quiet."""
    if not current_user.is_authenticated:
        if wants_fragment():
            return "", STOP_POLLING
        return login_manager.unauthorized()
    unread = inapp.unread_count(current_user.id)
    if wants_fragment() and request.args.get("seen", type=int) == unread:
        response = make_response("", 204)
    else:
        response = make_response(
            render_template("notifications/_bell_count.html", bell_count=unread)
        )
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("HX-Request")
    return response


@bp.post("/me/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    try:
        notification = inapp.mark_read(current_user.id, notification_id)
        title = notification.title
        db.session.commit()
    except inapp.NotFound:
        db.session.rollback()
        abort(404)
    return _after_change(f"Marked “{title}” as read.")


@bp.post("/me/notifications/read-all")
@login_required
def mark_all_read():
    marked = inapp.mark_all_read(current_user.id)
    db.session.commit()
    if marked:
        return _after_change(f"Marked {marked} notification{'s' if marked != 1 else ''} as read.")
    return _after_change("Nothing was unread.")


# --- the admin screen ---------------------------------------------------------------------


def _admin_context(**extra) -> dict:
    return {
        "matrix": admin_service.channel_matrix(),
        "channels": list(Channel),
        "channel_labels": CHANNEL_LABELS,
        "field_name": admin_service.field_name,
        "sms_ready": gateway_configured(),
        "failures": admin_service.undelivered(),
        **extra,
    }


@bp.get("/admin/notifications")
@permission_required(Perm.SETTINGS_MANAGE)
def admin():
    return render_template("notifications/admin.html", **_admin_context())


@bp.post("/admin/notifications/channels")
@permission_required(Perm.SETTINGS_MANAGE)
def admin_channels():
    shown = set(request.form.getlist("rules-shown"))
    ticked = set(request.form.getlist("channel"))
    admin_service.save_channels(shown, ticked)
    db.session.commit()
    flash("Notification channels saved.", "success")
    return redirect(url_for("notifications.admin"), 303)


@bp.post("/admin/notifications/messages/<int:message_id>/retry")
@permission_required(Perm.SETTINGS_MANAGE)
def admin_retry(message_id: int):
    try:
        admin_service.retry(message_id)
        db.session.commit()
    except admin_service.NotFound:
        db.session.rollback()
        abort(404)
    queued = enqueue_ids([message_id])  # a Redis outage leaves it to the sweeper
    message = (
        f"Message {message_id} will be sent again within a minute."
        if queued
        else f"Message {message_id} will be sent again when the job queue is back."
    )
    if wants_fragment():
        return render(
            "notifications/admin.html",
            "notifications/_failures.html",
            failures=admin_service.undelivered(),
            message=message,
        )
    flash(message, "success")
    return redirect(url_for("notifications.admin") + "#failures-h", 303)
