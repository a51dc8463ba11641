"""P3: invitation and reset links (single use, expiring, only hashes stored) and the
forgot-password page (same answer for every address, rate-limited), over real HTTP with the
outbox delivered to a real local SMTP server."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.accounts.models import PasswordToken, User
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import OutboxMessage
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import CSRF_RE, PASSWORD, csrf_from, login
from tests.notifications import conftest as _mail
from tests.notifications.conftest import deliver_all

NEW_PASSWORD = "a brand new passphrase"
smtp_server = _mail.smtp_server  # the real local SMTP server fixture
LINK_RE = re.compile(r"https?://\S+/set-password/[A-Za-z0-9_\-]+")


def _person(app, email: str, name: str = "Ines Invited", role: str = "agent") -> int:
    """A person added without a password (as the people screen does before inviting)."""
    from app.accounts.service import create_user

    with app.app_context():
        begin_write()
        user = create_user(email, name, role)
        db.session.commit()
        return user.id


def _invite(app, user_id: int, inviter_id: int | None) -> None:
    from app.accounts.passwords import send_invitation

    with app.app_context():
        begin_write()
        inviter = db.session.get(User, inviter_id) if inviter_id else None
        send_invitation(db.session.get(User, user_id), inviter)
        db.session.commit()
    deliver_all(app)


def _link(message) -> str:
    """The set-password path in an email; the text and HTML parts carry the same link."""
    [link] = set(LINK_RE.findall(message.text))
    assert link in message.html
    return urlsplit(link).path


def _post_password(client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    token = csrf_from(client, path)
    data = {"password": password, "confirm": confirm or password, "csrf_token": token}
    return client.post(path, data=data)


def _password_hash(app, user_id: int) -> str | None:
    with app.app_context():
        value = db.session.get(User, user_id).password_hash
        db.session.rollback()
        return value


def _can_sign_in(app, email: str, password: str) -> bool:
    client = app.test_client()
    token = csrf_from(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return response.status_code == 302


@pytest.fixture
def owner(factory):
    return factory.user("owner", email="olive@example.test", name="Olive Owner")


def test_invitation_email_link_sets_the_password_once(app, client, owner, smtp_server):
    """The invitation names the inviter, Slotbook, the expiry and single use; its link opens a
    form (GET changes nothing), sets the password by POST, signs in; the password works."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)

    [mail] = smtp_server.to("ines@example.test")
    assert "Olive Owner has invited you" in mail.text
    assert "Slotbook is where" in mail.text
    assert "works once and expires on" in mail.text
    assert "(7 days from now)" in mail.text
    assert "ines@example.test" in mail.text
    path = _link(mail)
    assert path.startswith("/set-password/sbpw_")

    before = db_state(app)
    page = client.get(path)
    assert page.status_code == 200
    assert "ines@example.test" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert changed_tables(before, db_state(app)) == []

    response = _post_password(client, path)
    assert response.status_code == 303
    assert response.headers["Location"] == "/calendar"  # an agent's landing page
    assert client.get("/me/profile").status_code == 200  # signed in by the link
    assert _can_sign_in(app, "ines@example.test", NEW_PASSWORD)
    assert not _can_sign_in(app, "ines@example.test", PASSWORD)


def test_a_used_link_shows_already_used_and_changes_nothing(app, client, owner, smtp_server):
    """Second use, GET or POST: the "already used" page, 410, no row touched."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    path = _link(smtp_server.to("ines@example.test")[0])
    assert _post_password(app.test_client(), path).status_code == 303

    before = db_state(app)
    page = client.get(path)
    assert page.status_code == 410
    assert "This link has already been used" in page.get_data(as_text=True)
    token = csrf_from(client, "/login")
    response = client.post(
        path,
        data={
            "password": "another passphrase",
            "confirm": "another passphrase",
            "csrf_token": token,
        },
    )
    assert response.status_code == 410
    assert "This link has already been used" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert _can_sign_in(app, "ines@example.test", NEW_PASSWORD)
    assert not _can_sign_in(app, "ines@example.test", "another passphrase")


def test_a_tampered_link_is_unknown_and_changes_nothing(app, client, owner, smtp_server):
    """One character changed, cut short or garbage: the "not valid" page, 404, no change."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    path = _link(smtp_server.to("ines@example.test")[0])
    flipped = path[:-1] + ("A" if path[-1] != "A" else "B")
    before = db_state(app)
    token = csrf_from(client, "/login")
    for bad in (flipped, path[:-5], "/set-password/nonsense", "/set-password/" + "x" * 500):
        page = client.get(bad)
        assert page.status_code == 404, bad
        assert "This link is not valid" in page.get_data(as_text=True)
        response = client.post(
            bad, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 404
    assert changed_tables(before, db_state(app)) == []
    assert _password_hash(app, user_id) is None
    assert client.get(path).status_code == 200  # the real link still works


def test_an_expired_link_says_when_and_whom_to_ask(app, client, owner, smtp_server):
    """Past its expiry: the "expired" page naming the date and the inviter; POST changes
    nothing."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    path = _link(smtp_server.to("ines@example.test")[0])
    with app.app_context():
        begin_write()
        row = db.session.scalars(select(PasswordToken)).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    before = db_state(app)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "This link has expired" in html
    assert "This link expired on" in html and "(Europe/London)" in html
    assert "Ask Olive Owner for a new invitation" in html
    assert 'href="/forgot-password"' in html
    token = csrf_from(client, "/login")
    response = client.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 410
    assert changed_tables(before, db_state(app)) == []
    assert _password_hash(app, user_id) is None


def test_only_hashes_are_stored(app, owner, smtp_server):
    """The plaintext token from the email appears in no table (outbox payload included);
    its SHA-256 does."""
    from app.security import hash_token

    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    token = _link(smtp_server.to("ines@example.test")[0]).rsplit("/", 1)[1]
    dump = repr(db_state(app))
    assert token not in dump
    assert token[5:25] not in dump  # not even a fragment of it
    assert hash_token(token) in dump


def test_weak_or_mismatched_password_is_refused_and_the_link_stays_usable(
    app, client, owner, smtp_server
):
    """Short or not repeated: 400 with the reason, nothing written, the link still works."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    path = _link(smtp_server.to("ines@example.test")[0])
    before = db_state(app)
    short = _post_password(client, path, "short")
    assert short.status_code == 400
    assert "at least 10 characters" in short.get_data(as_text=True)
    other = _post_password(client, path, NEW_PASSWORD, "something else entirely")
    assert other.status_code == 400
    assert "The passwords do not match." in other.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert _post_password(client, path).status_code == 303


def test_a_new_invitation_replaces_the_earlier_link(app, owner, smtp_server):
    """Inviting again revokes the unused earlier link: it shows "already used"."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    _invite(app, user_id, owner.id)
    first, second = (_link(m) for m in smtp_server.to("ines@example.test"))
    assert first != second
    client = app.test_client()
    assert client.get(first).status_code == 410
    assert _post_password(client, second).status_code == 303


def test_a_failed_send_keeps_no_live_token_and_the_retry_sends_a_fresh_link(
    app, owner, smtp_server
):
    """SMTP down: the outbox row stays pending and no token row is left behind; once the
    server is back, the retry mails a link that works."""
    from app.accounts.passwords import send_invitation
    from app.jobs import deliver_outbox_message

    user_id = _person(app, "ines@example.test")
    smtp_server.stop()
    with app.app_context():
        begin_write()
        send_invitation(db.session.get(User, user_id), db.session.get(User, owner.id))
        db.session.commit()
        message_id = db.session.scalars(select(OutboxMessage.id)).one()
        db.session.rollback()
        assert deliver_outbox_message(message_id) == "pending"
        db.session.remove()
    with app.app_context():
        assert db.session.scalars(select(PasswordToken)).all() == []
        db.session.rollback()
        begin_write()
        db.session.get(OutboxMessage, message_id).available_at = utcnow()
        db.session.commit()
    smtp_server.start()
    deliver_all(app)
    [mail] = smtp_server.to("ines@example.test")
    assert _post_password(app.test_client(), _link(mail)).status_code == 303


def test_concurrent_redeems_of_one_link_have_exactly_one_winner(app, owner, smtp_server):
    """Two browsers post the same link at once with different passwords: one is signed in,
    the other gets "already used", and only the winner's password works."""
    user_id = _person(app, "ines@example.test")
    _invite(app, user_id, owner.id)
    path = _link(smtp_server.to("ines@example.test")[0])
    clients = [app.test_client(), app.test_client()]
    tokens = [csrf_from(c, path) for c in clients]
    passwords = ["first passphrase wins", "second passphrase wins"]
    barrier = threading.Barrier(2)
    results: dict[int, int] = {}

    def redeem(i: int) -> None:
        barrier.wait()
        data = {"password": passwords[i], "confirm": passwords[i], "csrf_token": tokens[i]}
        results[i] = clients[i].post(path, data=data).status_code

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results.values()) == [303, 410]
    winner = next(i for i, status in results.items() if status == 303)
    assert _can_sign_in(app, "ines@example.test", passwords[winner])
    assert not _can_sign_in(app, "ines@example.test", passwords[1 - winner])


def test_redeem_takes_the_link_with_a_conditional_update(app, owner):
    """The service itself: once a redeem has taken the row, a second sees used (the UPDATE's
    WHERE used_at IS NULL, not an earlier read, decides)."""
    from app.accounts.passwords import LinkError, issue_token, redeem

    user_id = _person(app, "ines@example.test")
    with app.app_context():
        begin_write()
        token = issue_token(db.session.get(User, user_id), "reset")
        db.session.commit()
    with app.app_context():
        begin_write()
        redeem(token, NEW_PASSWORD)
        db.session.commit()
    with app.app_context():
        begin_write()
        with pytest.raises(LinkError) as caught:
            redeem(token, "another passphrase")
        assert caught.value.state == "used"
        db.session.rollback()


# --- forgot password -------------------------------------------------------------------------


HX_CSRF_RE = re.compile(r'"X-CSRFToken": "[^"]+"')


def _normalised(body: str, email: str) -> str:
    """The page without what differs by design: the session's CSRF token, the address."""
    body = CSRF_RE.sub('name="csrf_token" value="TOKEN"', body)
    return HX_CSRF_RE.sub('"X-CSRFToken": "TOKEN"', body).replace(email, "EMAIL")


def _forgot(client, email: str):
    token = csrf_from(client, "/forgot-password")
    return client.post("/forgot-password", data={"email": email, "csrf_token": token})


def test_forgot_password_answers_the_same_for_known_and_unknown_emails(app, factory, smtp_server):
    """Same status and page (but for the CSRF token and the address typed back) for an
    account and for no account; only the account gets a mail, and its link works."""
    factory.user("agent", email="known@example.test", name="Known Person")
    known = _forgot(app.test_client(), "known@example.test")
    unknown = _forgot(app.test_client(), "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    assert _normalised(known.get_data(as_text=True), "known@example.test") == _normalised(
        unknown.get_data(as_text=True), "nobody@example.test"
    )
    assert "If an account exists for" in known.get_data(as_text=True)
    assert (
        known.headers.get("Set-Cookie", "").split("=")[0]
        == (unknown.headers.get("Set-Cookie", "").split("=")[0])
    )
    deliver_all(app)
    assert [m.to for m in smtp_server.messages] == [["known@example.test"]]
    [mail] = smtp_server.messages
    assert "expires on" in mail.text and "(1 hour from now)" in mail.text
    client = app.test_client()
    assert _post_password(client, _link(mail)).status_code == 303
    assert _can_sign_in(app, "known@example.test", NEW_PASSWORD)


def test_forgot_password_sends_nothing_for_an_inactive_account(app, factory, smtp_server):
    """A deactivated account gets the same page and no mail."""
    user = factory.user("agent", email="gone@example.test")
    with app.app_context():
        begin_write()
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert _forgot(app.test_client(), "gone@example.test").status_code == 200
    deliver_all(app)
    assert smtp_server.messages == []


def test_forgot_password_without_an_address_is_a_400(app, client):
    """An empty form: a clear message and no outbox row."""
    before = db_state(app)
    response = _forgot(client, "  ")
    assert response.status_code == 400
    assert "Enter your email address." in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_forgot_password_is_rate_limited_per_email(app, factory, smtp_server):
    """Five posts for one address in 15 minutes, then 429 (with Retry-After), and no sixth
    mail, even from another client."""
    factory.user("agent", email="known@example.test")
    for _ in range(5):
        assert _forgot(app.test_client(), "known@example.test").status_code == 200
    before = db_state(app)
    refused = _forgot(app.test_client(), "KNOWN@example.test ")
    assert refused.status_code == 429
    assert "Too many requests" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert changed_tables(before, db_state(app)) == []
    deliver_all(app)
    assert len(smtp_server.to("known@example.test")) == 5
    assert _forgot(app.test_client(), "other@example.test").status_code == 200


def test_forgot_password_is_rate_limited_per_ip(app, factory, smtp_server):
    """Over the per-IP limit every address is refused, known or not."""
    app.config["SLOTBOOK_LIMIT_PASSWORD_RESET_IP"] = "3/hour"
    factory.user("agent", email="known@example.test")
    client = app.test_client()
    for n in range(3):
        assert _forgot(client, f"someone{n}@example.test").status_code == 200
    assert _forgot(client, "known@example.test").status_code == 429
    deliver_all(app)
    assert smtp_server.messages == []


def test_signed_in_people_reach_the_forgot_password_page_from_sign_in(app, client):
    """The sign-in page links to it."""
    assert 'href="/forgot-password"' in client.get("/login").get_data(as_text=True)


def test_login_still_works_for_a_normal_account(app, client, factory):
    """A person with a password is untouched by the new pages (guard against regressions)."""
    user = factory.user("agent")
    login(client, user.email)
    assert client.get("/me/profile").status_code == 200
