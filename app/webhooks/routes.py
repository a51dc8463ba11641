"""Webhook screens (SPEC I6), permission ``integrations.manage``: list and add, one endpoint's
events, enable/disable and delivery log, delete after a confirmation.

Thin: load (unknown ids are a 404), call ``webhooks.service``, commit, redirect; a refused
change is shown again with its message, HTTP 400, nothing written. The secret is shown once,
in the answer to the post that made it (never stored in the session or a flash message).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app import htmx
from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.database import MAX_ID
from app.extensions import db
from app.outbox import OutboxMessage
from app.webhooks import service
from app.webhooks.models import EVENTS, Webhook, WebhookDelivery

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")
NEED = Perm.INTEGRATIONS_MANAGE
LOG_LIMIT = 100


def _load(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id) if 0 < webhook_id <= MAX_ID else None
    return webhook or abort(404)


def _list(error: str | None = None, status: int = 200, url: str = "", events=None):
    rows = db.session.scalars(select(Webhook).order_by(Webhook.id)).all()
    last = dict(
        db.session.execute(
            select(WebhookDelivery.webhook_id, func.max(WebhookDelivery.at)).group_by(
                WebhookDelivery.webhook_id
            )
        ).all()
    )
    return htmx.render(
        "webhooks/index.html",
        "webhooks/_list.html",
        status,
        webhooks=rows,
        last=last,
        events=EVENTS,
        chosen=set(events if events is not None else EVENTS),
        url=url,
        error=error,
        https_only=not service.private_urls_allowed(),
    )


@bp.get("")
@permission_required(NEED)
def index():
    return _list()


@bp.post("")
@permission_required(NEED)
def create():
    url = request.form.get("url", "")
    events = request.form.getlist("events")
    try:
        webhook, secret = service.create_webhook(current_user, url, events)
        db.session.commit()
    except service.WebhookError as exc:
        db.session.rollback()
        return _list(str(exc), 400, url, events)
    response = render_template("webhooks/created.html", webhook=webhook, secret=secret)
    return response, 201, {"Cache-Control": "no-store"}


def _detail(webhook: Webhook, error: str | None = None, status: int = 200):
    deliveries = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(LOG_LIMIT)
    ).all()
    ids = {d.outbox_id for d in deliveries}
    outcome = dict(
        db.session.execute(
            select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(ids))
        ).all()
    )
    latest = {}
    for d in deliveries:  # newest first: the first seen is the latest attempt
        latest.setdefault(d.outbox_id, d.id)
    return htmx.render(
        "webhooks/detail.html",
        "webhooks/_deliveries.html",
        status,
        webhook=webhook,
        deliveries=deliveries,
        outcome=outcome,
        latest=latest,
        events=EVENTS,
        error=error,
    )


@bp.get("/<int:webhook_id>")
@permission_required(NEED)
def detail(webhook_id: int):
    return _detail(_load(webhook_id))


@bp.post("/<int:webhook_id>/events")
@permission_required(NEED)
def set_events(webhook_id: int):
    webhook = _load(webhook_id)
    try:
        service.set_events(webhook, request.form.getlist("events"))
        db.session.commit()
    except service.WebhookError as exc:
        db.session.rollback()
        return _detail(_load(webhook_id), str(exc), 400)
    flash("Events saved.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id), 303)


@bp.post("/<int:webhook_id>/active")
@permission_required(NEED)
def set_active(webhook_id: int):
    webhook = _load(webhook_id)
    active = request.form.get("active") == "1"
    service.set_active(webhook, active)
    db.session.commit()
    flash("Webhook enabled." if active else "Webhook disabled: nothing is sent to it.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id), 303)


@bp.route("/<int:webhook_id>/delete", methods=["GET", "POST"])
@permission_required(NEED)
def delete(webhook_id: int):
    webhook = _load(webhook_id)
    if request.method == "GET":
        return render_template("webhooks/delete.html", webhook=webhook)
    url = webhook.url
    service.delete_webhook(webhook)
    db.session.commit()
    flash(f"Webhook to {url} deleted, with its delivery log.", "success")
    return redirect(url_for("webhooks.index"), 303)
