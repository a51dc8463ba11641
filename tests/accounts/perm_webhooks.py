"""Permission-table builders for the webhook screens (/admin/webhooks, ``integrations.manage``).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py``. Every request about one webhook acts on a fresh one made for
it. Addresses are public IP literals, so no name is looked up and nothing is ever sent.
"""

from __future__ import annotations

from app.accounts.permissions import Perm

NEED = Perm.INTEGRATIONS_MANAGE
Req = None  # set by register(): the shared request type of tests/accounts/conftest.py
PUBLIC_URL = "https://93.184.216.34/slotbook-hook"


def _fresh_webhook(world) -> int:
    from app.database import begin_write
    from app.extensions import db
    from app.webhooks.models import Webhook

    with world.app.app_context():
        begin_write()
        webhook = Webhook(url=PUBLIC_URL, events=["booking.created"], active=True)
        webhook.store_secret("whsec_perm")
        db.session.add(webhook)
        db.session.commit()
        return webhook.id


def _index(world, holder, actor):
    return [Req("webhooks:index", "GET", "/admin/webhooks", permission=NEED)]


def _create(world, holder, actor):
    data = {"url": PUBLIC_URL, "events": ["booking.created", "booking.cancelled"]}
    return [Req("webhooks:create", "POST", "/admin/webhooks", data, 201, NEED)]


def _detail(world, holder, actor):
    url = f"/admin/webhooks/{_fresh_webhook(world)}"
    return [Req("webhooks:detail", "GET", url, permission=NEED)]


def _set_events(world, holder, actor):
    url = f"/admin/webhooks/{_fresh_webhook(world)}/events"
    return [Req("webhooks:events", "POST", url, {"events": ["booking.rejected"]}, 303, NEED)]


def _set_active(world, holder, actor):
    url = f"/admin/webhooks/{_fresh_webhook(world)}/active"
    return [Req("webhooks:active", "POST", url, {"active": "0"}, 303, NEED)]


def _delete(world, holder, actor):
    url = f"/admin/webhooks/{_fresh_webhook(world)}/delete"
    return [
        Req("webhooks:delete-confirm", "GET", url, permission=NEED),
        Req("webhooks:delete", "POST", url, {}, 303, NEED),
    ]


BUILDERS = {
    "webhooks.index": _index,
    "webhooks.create": _create,
    "webhooks.detail": _detail,
    "webhooks.set_events": _set_events,
    "webhooks.set_active": _set_active,
    "webhooks.delete": _delete,
}


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    global Req
    Req = tables["Req"]
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(BUILDERS, NEED))
    tables["GUARDED_BUILDERS"].update(BUILDERS)
