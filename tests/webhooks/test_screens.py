"""The webhook screens: only ``integrations.manage`` reaches them, every webhook id is
checked, the secret is shown once, changes need a CSRF token, and a bad form writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.permissions import BUILTIN_ROLES, Perm
from app.database import begin_write
from app.extensions import db
from app.webhooks.models import Webhook
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import CSRF_RE, csrf_from, login
from tests.webhooks.conftest import register

PUBLIC = "https://93.184.216.34/hook"


def _webhook(app, url: str = PUBLIC, events=("booking.created",)) -> int:
    with app.app_context():
        begin_write()
        webhook = Webhook(url=url, events=list(events), active=True)
        webhook.store_secret("whsec_test")
        db.session.add(webhook)
        db.session.commit()
        return webhook.id


def _row(app, webhook_id: int) -> Webhook | None:
    with app.app_context():
        webhook = db.session.get(Webhook, webhook_id)
        if webhook is not None:
            db.session.expunge(webhook)
        return webhook


def _token(client, url: str = "/admin/webhooks") -> str:
    return csrf_from(client, url)


@pytest.mark.parametrize("role", list(BUILTIN_ROLES))
def test_only_integration_managers_reach_any_webhook_screen(app, client, factory, role):
    """Each role without ``integrations.manage`` gets 403 on every route and changes nothing;
    the roles that have it get the pages."""
    webhook_id = _webhook(app)
    person = factory.user(role)
    login(client, person.email)
    allowed = Perm.INTEGRATIONS_MANAGE in BUILTIN_ROLES[role][1]
    token = CSRF_RE.search(client.get("/me/profile").get_data(as_text=True))
    token = token.group(1) if token else ""
    before = db_state(app)
    posts = {
        "/admin/webhooks": {"url": PUBLIC, "events": ["booking.created"]},
        f"/admin/webhooks/{webhook_id}/events": {"events": ["booking.rejected"]},
        f"/admin/webhooks/{webhook_id}/active": {"active": "0"},
        f"/admin/webhooks/{webhook_id}/delete": {},
    }
    for url in ("/admin/webhooks", f"/admin/webhooks/{webhook_id}"):
        assert client.get(url).status_code == (200 if allowed else 403), url
    assert client.get(f"/admin/webhooks/{webhook_id}/delete").status_code == (
        200 if allowed else 403
    )
    if allowed:
        nav = client.get("/admin/webhooks").get_data(as_text=True)
        assert 'aria-current="page">Webhooks</a>' in nav
        return
    for url, data in posts.items():
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 403, url
    assert changed_tables(before, db_state(app)) == []
    assert ">Webhooks</a>" not in client.get("/").get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in(app, client):
    webhook_id = _webhook(app)
    for url in ("/admin/webhooks", f"/admin/webhooks/{webhook_id}"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_webhook_ids_are_404_for_every_route(app, client, factory):
    """Ids that name no webhook (deleted, never made, beyond int4) are a 404, GET or POST."""
    login(client, factory.user("owner").email)
    gone = _webhook(app)
    token = _token(client, f"/admin/webhooks/{gone}")
    client.post(f"/admin/webhooks/{gone}/delete", data={"csrf_token": token})
    for webhook_id in (gone, gone + 100, 2**31):
        for suffix in ("", "/delete"):
            assert client.get(f"/admin/webhooks/{webhook_id}{suffix}").status_code == 404
        for suffix, data in (
            ("/events", {"events": ["booking.created"]}),
            ("/active", {"active": "1"}),
            ("/delete", {}),
        ):
            url = f"/admin/webhooks/{webhook_id}{suffix}"
            assert client.post(url, data={**data, "csrf_token": token}).status_code == 404


def test_posts_without_a_valid_csrf_token_change_nothing(app, client, factory):
    login(client, factory.user("administrator").email)
    webhook_id = _webhook(app)
    before = db_state(app)
    posts = {
        "/admin/webhooks": {"url": PUBLIC, "events": ["booking.created"]},
        f"/admin/webhooks/{webhook_id}/events": {"events": ["booking.rejected"]},
        f"/admin/webhooks/{webhook_id}/active": {"active": "0"},
        f"/admin/webhooks/{webhook_id}/delete": {},
    }
    for url, data in posts.items():
        assert client.post(url, data=data).status_code == 400, url
        assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400, url
    assert changed_tables(before, db_state(app)) == []


def test_the_secret_is_shown_once_and_stored_sealed(app, client, factory):
    """The answer to the post shows the secret (not cached); no later page does, and the
    database holds only the sealed form, which opens to it."""
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = True
    login(client, factory.user("administrator").email)
    webhook_id, secret = register(client, "http://127.0.0.1:9/hook", ["booking.created"])
    assert secret.startswith("whsec_") and len(secret) > 40
    for url in ("/admin/webhooks", f"/admin/webhooks/{webhook_id}"):
        assert secret not in client.get(url).get_data(as_text=True)
    with app.app_context():
        webhook = db.session.get(Webhook, webhook_id)
        assert secret not in webhook.secret_sealed
        assert webhook.reveal_secret() == secret
        assert secret not in repr(webhook)


def test_a_bad_form_is_shown_again_with_its_message_and_writes_nothing(app, client, factory):
    login(client, factory.user("administrator").email)
    token = _token(client)
    cases = [
        ({"url": "", "events": ["booking.created"]}, "Enter the address"),
        ({"url": PUBLIC}, "Choose at least one event"),
        ({"url": PUBLIC, "events": ["booking.exploded"]}, "Unknown event: booking.exploded."),
        ({"url": "https://" + "a" * 2000, "events": ["booking.created"]}, "too long"),
        ({"url": "not a url", "events": ["booking.created"]}, "must start with https://"),
    ]
    for data, message in cases:
        response = client.post("/admin/webhooks", data={**data, "csrf_token": token})
        html = response.get_data(as_text=True)
        assert response.status_code == 400, data
        assert message in html, (message, html[:3000])
        assert 'aria-invalid="true"' in html
    with app.app_context():
        assert db.session.scalars(select(Webhook)).all() == []


def test_events_can_be_changed_and_an_empty_choice_is_refused(app, client, factory):
    login(client, factory.user("administrator").email)
    webhook_id = _webhook(app)
    url = f"/admin/webhooks/{webhook_id}"
    token = _token(client, url)
    response = client.post(
        f"{url}/events",
        data={"events": ["attendee.removed", "booking.cancelled"], "csrf_token": token},
    )
    assert response.status_code == 303
    assert _row(app, webhook_id).events == ["booking.cancelled", "attendee.removed"]
    assert "Events saved." in client.get(url).get_data(as_text=True)

    response = client.post(f"{url}/events", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Choose at least one event" in response.get_data(as_text=True)
    assert _row(app, webhook_id).events == ["booking.cancelled", "attendee.removed"]


def test_disable_and_enable(app, client, factory):
    login(client, factory.user("administrator").email)
    webhook_id = _webhook(app)
    url = f"/admin/webhooks/{webhook_id}"
    token = _token(client, url)
    assert (
        client.post(f"{url}/active", data={"active": "0", "csrf_token": token}).status_code == 303
    )
    assert _row(app, webhook_id).active is False
    html = client.get(url).get_data(as_text=True)
    assert "Webhook disabled" in html and "Enable webhook" in html
    assert (
        client.post(f"{url}/active", data={"active": "1", "csrf_token": token}).status_code == 303
    )
    assert _row(app, webhook_id).active is True


def test_delete_asks_first_then_deletes(app, client, factory):
    """The delete link opens a confirmation that changes nothing; its button deletes."""
    login(client, factory.user("administrator").email)
    webhook_id = _webhook(app)
    url = f"/admin/webhooks/{webhook_id}/delete"
    before = db_state(app)
    page = client.get(url)
    assert page.status_code == 200
    assert "Delete this webhook?" in page.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    response = client.post(url, data={"csrf_token": _token(client, url)})
    assert response.status_code == 303
    assert _row(app, webhook_id) is None
    assert "deleted, with its delivery log" in client.get("/admin/webhooks").get_data(as_text=True)


def test_the_delivery_log_refreshes_as_a_fragment(app, client, factory):
    """HTMX asks for the log alone; a normal load gets the whole page around it."""
    login(client, factory.user("administrator").email)
    webhook_id = _webhook(app)
    url = f"/admin/webhooks/{webhook_id}"
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert '<section class="panel" id="webhook-deliveries"' in html
    assert "<html" not in html and "Nothing sent yet" in html
    assert "HX-Request" in fragment.headers["Vary"]
    assert "<html" in client.get(url).get_data(as_text=True)
