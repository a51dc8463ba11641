"""Sessions: no fixation, logout and password resets end sessions, safe login redirects."""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

from app.accounts.models import User
from app.database import begin_write
from app.extensions import db
from tests.conftest import PASSWORD, csrf_from, login

BAD_LOGIN = "That email and password do not match an active account."
NEW_PASSWORD = "a completely new passphrase"


def _post_login(client, email: str, password: str, next_url: str | None = None):
    token = csrf_from(client, "/login")
    url = "/login" if next_url is None else f"/login?next={quote(next_url, safe='')}"
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def _signed_in(client) -> bool:
    response = client.get("/bookings")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
    return response.status_code == 200


def _browser_host(location: str) -> str:
    """The host a browser would go to: it drops tabs and newlines and reads \\ as /."""
    cleaned = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    return urlsplit(urljoin("http://localhost/login", cleaned)).netloc


def _password_hash(app, user_id: int) -> str:
    with app.app_context():
        return db.session.get(User, user_id).password_hash


def test_login_clears_the_pre_login_session(app, client, factory):
    """A value planted in the session before login, and the old CSRF token, are gone after it."""
    user = factory.user("agent", email="ada@example.test")
    pre_login_token = csrf_from(client, "/login")
    with client.session_transaction() as sess:
        sess["planted"] = "attacker's value"
    login(client, user.email)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert "_user_id" in sess
    response = client.post("/logout", data={"csrf_token": pre_login_token})
    assert response.status_code == 400
    assert _signed_in(client)


def test_logout_ends_the_session_and_a_copied_cookie(app, client, factory):
    """After POST /logout the session is over, and a copy of its cookie replayed elsewhere too."""
    user = factory.user("agent", email="ada@example.test")
    login(client, user.email)
    stolen = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert _signed_in(thief)  # the copy works while the session lives
    assert client.get("/logout").status_code == 405  # no logout by a GET (link, image)
    assert _signed_in(client)

    response = client.post("/logout", data={"csrf_token": csrf_from(client, "/bookings")})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not _signed_in(client)
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert not _signed_in(replay)
    assert not _signed_in(thief)


def test_owner_resets_a_users_password(app, factory):
    """The old password stops working, the new one works and the user's session ends."""
    owner = factory.user("owner", email="owner@example.test")
    agent = factory.user("agent", email="ada@example.test")
    owner_client, agent_client = app.test_client(), app.test_client()
    login(owner_client, owner.email)
    login(agent_client, agent.email)
    url = f"/admin/users/{agent.id}/password"
    token = csrf_from(owner_client, url)
    old_hash = _password_hash(app, agent.id)

    mismatch = owner_client.post(
        url, data={"password": NEW_PASSWORD, "confirm": "something else", "csrf_token": token}
    )
    assert mismatch.status_code == 400 and "do not match" in mismatch.get_data(as_text=True)
    assert _password_hash(app, agent.id) == old_hash and _signed_in(agent_client)

    response = owner_client.post(
        url, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/people/{agent.id}"
    assert not _signed_in(agent_client)
    assert _post_login(app.test_client(), agent.email, PASSWORD).status_code == 401
    assert _post_login(app.test_client(), agent.email, NEW_PASSWORD).status_code == 302
    assert _signed_in(owner_client)  # resetting someone else's password keeps one's own session


def test_administrator_cannot_reset_an_owners_password(app, client, factory):
    """users.manage is not enough for an owner's password: 403, and the password stays."""
    owner = factory.user("owner", email="owner@example.test")
    admin = factory.user("administrator", email="admin@example.test")
    agent = factory.user("agent", email="ada@example.test")
    login(client, admin.email)
    token = csrf_from(client, "/bookings")
    url = f"/admin/users/{owner.id}/password"
    old_hash = _password_hash(app, owner.id)
    assert client.get(url).status_code == 403
    response = client.post(
        url, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403
    assert _password_hash(app, owner.id) == old_hash
    assert _post_login(app.test_client(), owner.email, PASSWORD).status_code == 302
    # The same administrator may reset a non-owner's password.
    response = client.post(
        f"/admin/users/{agent.id}/password",
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302


def test_wrong_password_or_unknown_email_is_401_with_one_clear_message(app, client, factory):
    """A bad password and an unknown address get the same 401 and message, and no session."""
    factory.user("agent", email="ada@example.test")
    for email, password in [
        ("ada@example.test", "not the password"),
        ("nobody@example.test", PASSWORD),
    ]:
        response = _post_login(client, email, password)
        assert response.status_code == 401
        assert BAD_LOGIN in response.get_data(as_text=True)
        assert not _signed_in(client)


OFF_SITE = [
    "//evil.example",
    "https://evil.example",
    "http://evil.example/bookings",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "javascript:alert(1)",
    "evil.example",
]


def test_next_parameter_refuses_off_site_urls_at_login(app, factory):
    """Signing in with an off-site ``next`` lands on /bookings; a local path is honoured."""
    user = factory.user("agent", email="ada@example.test")
    for target in ["//evil.example", "https://evil.example", "/\\evil.example"]:
        response = _post_login(app.test_client(), user.email, PASSWORD, next_url=target)
        assert response.status_code == 302, f"next={target!r}"
        location = response.headers["Location"]
        assert _browser_host(location) == "localhost", f"next={target!r} -> {location!r}"
    response = _post_login(app.test_client(), user.email, PASSWORD, next_url="/bookings/new")
    assert response.headers["Location"] == "/bookings/new"


def test_next_parameter_check_covers_tricky_spellings(app):
    """Every off-site spelling (scheme, //, backslash, tab, newline) falls back to /bookings."""
    from app.accounts.routes import _safe_next

    with app.test_request_context():
        for target in OFF_SITE:
            assert _safe_next(target) == "/bookings", f"next={target!r}"
        assert _safe_next("/bookings/new?status=confirmed") == "/bookings/new?status=confirmed"


def test_disabled_user_cannot_log_in_or_keep_a_session(app, client, factory):
    """Disabling an account refuses its password (401) and ends its live session."""
    user = factory.user("agent", email="ada@example.test")
    login(client, user.email)
    with app.app_context():
        begin_write()
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert not _signed_in(client)
    response = _post_login(app.test_client(), user.email, PASSWORD)
    assert response.status_code == 401
    assert BAD_LOGIN in response.get_data(as_text=True)
