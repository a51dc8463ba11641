"""Sign-in throttling (issue 08, acceptance 7): failures per account and per address, a
clear 429 on the sign-in page, and the same answers whether or not the account exists."""

from __future__ import annotations

import re
import time

import pytest

from app import create_app
from app.config import TestConfig as _TestConfig
from tests.conftest import PASSWORD, RedisServer, csrf_from

WRONG = "not the password"
THROTTLED = "Too many sign-in attempts. Try again in 1 minute."
ALERT_RE = re.compile(r'<p class="flash flash-error" role="alert">([^<]*)</p>')


def _sign_in(client, email: str, password: str = WRONG):
    token = csrf_from(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def _alert(response) -> str:
    match = ALERT_RE.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:800]
    return match.group(1)


def _from(app, address: str):
    """A client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _page_without_csrf(response) -> str:
    """The page without its CSRF token (in the form and the HTMX headers) or typed address."""
    return re.sub(r'(value="|"X-CSRFToken": ")[^"]*"', "", response.get_data(as_text=True))


def test_the_sixth_wrong_password_within_a_minute_gets_429(app, factory):
    """Five wrong passwords are 401s; the sixth is a 429 page that says how long to wait,
    in a role=alert message, with Retry-After; the right password is then refused too."""
    ann = factory.user("agent")
    client = app.test_client()
    for _ in range(5):
        assert _sign_in(client, ann.email).status_code == 401
    response = _sign_in(client, ann.email)
    assert response.status_code == 429
    assert _alert(response).startswith(THROTTLED)
    assert "even with the right password" in _alert(response)
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert 'name="email"' in response.get_data(as_text=True)  # still the sign-in page

    right = _sign_in(client, ann.email, PASSWORD)
    assert right.status_code == 429 and _alert(right).startswith(THROTTLED)
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_an_unknown_email_is_answered_exactly_like_a_known_one(app, factory):
    """Same statuses, same pages (bar the CSRF token): nothing tells who has an account."""
    ann = factory.user("agent", email="ann@example.test")

    def answers(email: str) -> list[tuple[int, str]]:
        client = app.test_client()
        return [
            (response.status_code, _page_without_csrf(response))
            for response in (_sign_in(client, email) for _ in range(7))
        ]

    known, unknown = answers(ann.email), answers("nobody@example.test")
    assert [status for status, _ in known] == [401] * 5 + [429] * 2
    assert unknown == known
    assert THROTTLED in known[5][1]


def test_one_address_is_limited_across_accounts(app, factory):
    """Twenty failures from one address (four accounts, never over their own limit) and a
    fifth account is refused from there, but not from another address."""
    people = [factory.user("agent") for _ in range(5)]
    guesser = _from(app, "203.0.113.7")
    for person in people[:4]:
        for _ in range(5):
            assert _sign_in(guesser, person.email).status_code == 401
    refused = _sign_in(guesser, people[4].email, PASSWORD)
    assert refused.status_code == 429
    assert _alert(refused).startswith("Too many sign-in attempts. Try again in ")
    assert 540 < int(refused.headers["Retry-After"]) <= 600  # the 10-minute window
    assert _sign_in(_from(app, "198.51.100.2"), people[4].email, PASSWORD).status_code == 302


def test_signing_in_clears_the_account_count_only(app, factory):
    """Four failures then the right password: the account starts again from zero, so four
    more failures are still 401s; the address keeps counting all eight."""
    ann = factory.user("agent")
    client = _from(app, "192.0.2.1")
    for _ in range(4):
        assert _sign_in(client, ann.email).status_code == 401
    assert _sign_in(client, ann.email, PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client, "/bookings")})
    for _ in range(4):
        assert _sign_in(client, ann.email).status_code == 401
    for email in ("x@example.test", "y@example.test", "z@example.test"):
        for _ in range(4):  # 8 + 12 = 20 failures from this address
            assert _sign_in(client, email).status_code == 401
    assert _sign_in(client, ann.email, PASSWORD).status_code == 429


def test_after_the_window_the_right_password_works(app, factory):
    """The refusal lasts as long as the window, no longer (a 2-second window here)."""
    app.config["SLOTBOOK_LIMIT_SIGN_IN_EMAIL"] = "2 per 2 seconds"
    ann = factory.user("agent")
    client = app.test_client()
    for _ in range(2):
        assert _sign_in(client, ann.email).status_code == 401
    assert _sign_in(client, ann.email, PASSWORD).status_code == 429
    time.sleep(2.2)
    assert _sign_in(client, ann.email, PASSWORD).status_code == 302


def test_the_email_is_counted_however_it_is_typed(app, factory):
    """Case and surrounding spaces do not make a new account to guess at."""
    factory.user("agent", email="ann@example.test")
    client = app.test_client()
    for typed in ("ann@example.test", "ANN@example.test", " Ann@Example.Test ", "ann@EXAMPLE.test"):
        assert _sign_in(client, typed).status_code == 401
    assert _sign_in(client, "ann@example.test").status_code == 401
    assert _sign_in(client, "aNN@example.test").status_code == 429


# --- Redis unreachable ----------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_own_redis(database_url, redis_server):
    """The app with a Redis of its own, which the test stops."""
    app = create_app(_TestConfig(database_url, redis_server.url))
    yield app
    from app.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_sign_in_still_works_when_the_limit_store_is_down(app_own_redis, redis_server, caplog):
    """Redis stopped: staff can still sign in (the password is still checked), and the
    outage is logged."""
    from app.accounts.service import create_user, ensure_roles
    from app.database import begin_write
    from app.extensions import db

    app = app_own_redis
    with app.app_context():
        begin_write()
        ensure_roles()
        create_user("ann@example.test", "Ann", "agent", PASSWORD)
        db.session.commit()
    client = app.test_client()
    client.get("/login")
    redis_server.stop()
    assert _sign_in(client, "ann@example.test").status_code == 401
    assert _sign_in(client, "ann@example.test", PASSWORD).status_code == 302
    assert "sign-in limit storage unreachable" in caplog.text
