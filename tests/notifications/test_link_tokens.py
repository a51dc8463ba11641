"""No live link in a database dump (issue [08], acceptance 6): visitors' manage and confirm
links, poll answer links and set-password links reach people by email (and SMS) only.

Each test delivers through the real outbox to a real SMTP server, takes the link from the
email, dumps every table and checks that the link's token is nowhere in it, while the
emailed link still works: it works because it is the one that was emailed, not because a
copy of it sits in the database.
"""

from __future__ import annotations

import re
import sqlite3

from tests.accounts.conftest import db_state
from tests.conftest import csrf_from
from tests.notifications.conftest import deliver_all, outbox_rows
from tests.public.conftest import book_form, first_slot, public, set_settings

__all__ = ["public"]  # the public world fixture

LINK_RE = re.compile(
    r"https?://[^\s\"'<>]+/(?:book/(?:manage|confirm)|polls/answer|set-password)/[^\s\"'<>]+"
)


def dump(app, database_url: str) -> str:
    """Every table's rows as text: SQLite's own dump, or every row of every table."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return "\n".join(conn.iterdump())
    return repr(db_state(app))


def links_in(messages) -> dict[str, str]:
    """Each private link in the emails, by its path's first segments ("book/manage", …)."""
    found: dict[str, str] = {}
    for message in messages:
        for url in LINK_RE.findall(message.text):
            path = url.split("://", 1)[1].split("/", 1)[1]
            kind = "/".join(path.split("/")[:-1])
            found[kind] = url
    return found


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def assert_not_in_dump(app, database_url: str, urls) -> None:
    text = dump(app, database_url)
    assert "outbox_messages" in text or "INSERT" in text or "'outbox_messages'" in text
    for url in urls:
        assert token_of(url) not in text, f"a live token of {path_of(url)} is in the dump"


def test_visitor_confirm_and_manage_links_are_in_no_dump(
    app, client, public, smtp_server, database_url
):
    """A visitor asked to confirm (by email and SMS): while the messages wait and after they
    are delivered, neither token is in the dump; the emailed links open their pages."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.models import RuleChannel

    set_settings(app, confirmation_timeout_minutes=30, contact_required_fields="both")
    with app.app_context():
        begin_write()
        db.session.add(RuleChannel(rule="visitor_confirm_request", channel="sms", enabled=True))
        db.session.commit()
    booked = book_form(
        client, "consultation", first_slot(app, public["kind"]), phone="+447700900123"
    )
    assert booked.status_code in (200, 302, 303)
    [waiting] = outbox_rows(app, "public.confirmation_requested")
    urls = [waiting["payload"]["confirm_url"], waiting["payload"]["manage_url"]]
    assert_not_in_dump(app, database_url, urls)  # sealed while waiting

    deliver_all(app)
    [mail] = smtp_server.to("vera@example.test")
    emailed = links_in([mail])
    assert sorted(emailed.values()) == sorted(urls)
    [sms] = outbox_rows(app, "notify.sms")
    assert sms["status"] == "done" and "text" not in sms["stored"]
    assert_not_in_dump(app, database_url, urls)

    manage = client.get(path_of(emailed["book/manage"]))
    assert manage.status_code == 200 and "Consultation" in manage.get_data(as_text=True)
    confirm_path = path_of(emailed["book/confirm"])
    assert client.get(confirm_path).status_code == 200
    confirmed = client.post(confirm_path, data={"csrf_token": csrf_from(client, confirm_path)})
    assert confirmed.status_code == 200

    # Confirming mails a fresh manage link: in no dump either, and it works.
    smtp_server.clear()
    deliver_all(app)
    fresh = links_in(smtp_server.to("vera@example.test"))["book/manage"]
    assert fresh not in urls
    assert_not_in_dump(app, database_url, [fresh])
    assert client.get(path_of(fresh)).status_code == 200


def test_poll_answer_links_are_in_no_dump(app, client, factory, smtp_server, database_url):
    """A guest's poll link: mailed, absent from the dump, and it opens the answer page."""
    from tests.polls.test_polls import _create_poll

    organiser = factory.user("manager", email="org@example.test")
    colleague = factory.user("agent", email="col@example.test")
    _, tokens, _, _ = _create_poll(app, client, factory, organiser, colleague)
    deliver_all(app)
    [mail] = smtp_server.to("guest@outside.test")
    url = links_in([mail])["polls/answer"]
    assert token_of(url) == tokens["guest@outside.test"]
    assert_not_in_dump(app, database_url, [url])
    page = app.test_client().get(path_of(url))
    assert page.status_code == 200 and "Quarterly review" in page.get_data(as_text=True)


def test_set_password_links_are_in_no_dump(app, factory, smtp_server, database_url):
    """An invitation's set-password link: mailed, absent from the dump, and it works."""
    from app.accounts import passwords
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    owner = factory.user("owner", email="owner@example.test")
    newcomer = factory.user("agent", email="new@example.test")
    with app.app_context():
        begin_write()
        passwords.send_invitation(db.session.get(User, newcomer.id), db.session.get(User, owner.id))
        db.session.commit()
    deliver_all(app)
    [mail] = smtp_server.to("new@example.test")
    url = links_in([mail])["set-password"]
    assert_not_in_dump(app, database_url, [url])
    page = app.test_client().get(path_of(url))
    assert page.status_code == 200 and "password" in page.get_data(as_text=True).lower()
