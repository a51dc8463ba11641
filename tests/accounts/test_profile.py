"""P3: /me/profile for every signed-in person: name, time zone (times follow it, working hours
stay local), password change that ends the person's other sessions but keeps this one."""

from __future__ import annotations

from datetime import time

from app.accounts.models import User
from app.database import begin_write
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import PASSWORD, at, csrf_from, login

NEW_PASSWORD = "a brand new passphrase"


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _save(client, **data):
    token = csrf_from(client, "/me/profile")
    return client.post("/me/profile", data={**data, "csrf_token": token})


def _change_password(client, current: str, new: str, confirm: str | None = None):
    token = csrf_from(client, "/me/profile")
    data = {
        "current_password": current,
        "password": new,
        "confirm": confirm if confirm is not None else new,
        "csrf_token": token,
    }
    return client.post("/me/profile/password", data=data)


def test_profile_shows_email_role_and_zone_read_only(app, client, factory):
    """Email and role are shown, not editable; the zone in use is named."""
    user = factory.user("learner", email="lena@example.test", name="Lena Learner")
    login(client, user.email)
    html = client.get("/me/profile").get_data(as_text=True)
    assert "lena@example.test" in html and "Learner" in html
    assert 'name="email"' not in html and 'name="role"' not in html
    assert '<option selected value="Europe/London">' in html
    assert 'href="/me/profile"' in html  # the header links here


def test_changing_name_and_zone_is_reflected_everywhere_and_hours_stay_local(app, client, factory):
    """Times on pages follow the new zone; 09:00-17:00 working hours stay 09:00-17:00."""
    from app.accounts import hours

    user = factory.user("agent", email="ann@example.test", name="Ann Agent")
    with app.app_context():
        begin_write()
        hours.set_weekly_hours(db.session.get(User, user.id), {0: [(time(9), time(17))]})
        db.session.commit()
    kind = factory.booking_type(name="Observation")
    booking = factory.booking(None, kind, at(5, hour=10), [user])
    login(client, user.email)
    assert "19:00" not in client.get(f"/bookings/{booking.id}").get_data(as_text=True)

    response = _save(client, name="Ann Tokyo", timezone="Asia/Tokyo")
    assert response.status_code == 303 and response.headers["Location"] == "/me/profile"
    saved = _user(app, user.id)
    assert (saved.name, saved.timezone) == ("Ann Tokyo", "Asia/Tokyo")
    detail = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "19:00" in detail and "JST" in detail  # 10:00 UTC read in Tokyo
    assert "times in Asia/Tokyo" in detail
    assert "Ann Tokyo" in detail
    with app.app_context():
        week = hours.weekly_hours(db.session.get(User, user.id))
    assert week[0] == [(time(9), time(17))]
    assert "<strong>Asia/Tokyo</strong>" in client.get("/me/availability").get_data(as_text=True)


def test_bad_profile_input_is_refused_and_changes_nothing(app, client, factory):
    """An unknown zone or an empty name: 400 with the reason, no row changed."""
    user = factory.user("agent", name="Ann Agent")
    login(client, user.email)
    before = db_state(app)
    bad_zone = _save(client, name="Ann", timezone="Mars/Olympus_Mons")
    assert bad_zone.status_code == 400
    assert "Choose a time zone from the list." in bad_zone.get_data(as_text=True)
    no_name = _save(client, name="   ", timezone="Europe/Paris")
    assert no_name.status_code == 400
    assert "Enter your name." in no_name.get_data(as_text=True)
    folder = _save(client, name="Ann", timezone="Europe")
    assert folder.status_code == 400
    assert changed_tables(before, db_state(app)) == []


def test_password_change_ends_other_sessions_but_keeps_this_one(app, factory):
    """Two browsers signed in; changing the password in one signs the other out, this one
    stays in, and only the new password signs in."""
    user = factory.user("agent", email="ann@example.test")
    here, elsewhere = app.test_client(), app.test_client()
    login(here, user.email)
    login(elsewhere, user.email)
    assert elsewhere.get("/bookings").status_code == 200

    response = _change_password(here, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 303
    page = here.get("/me/profile")
    assert page.status_code == 200
    assert "You were signed out everywhere else." in page.get_data(as_text=True)
    gone = elsewhere.get("/bookings")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")
    # The session cookie kept here still posts (its CSRF token survived the re-login).
    assert _save(here, name="Still Me", timezone="Europe/London").status_code == 303
    fresh = app.test_client()
    login(fresh, user.email, NEW_PASSWORD)
    stranger = app.test_client()
    token = csrf_from(stranger, "/login")
    old = stranger.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert old.status_code == 401


def test_wrong_current_password_is_a_400_and_changes_nothing(app, client, factory):
    """Wrong current password, mismatched or short new one: 400, no row changed, still in."""
    user = factory.user("agent")
    login(client, user.email)
    before = db_state(app)
    wrong = _change_password(client, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.get_data(as_text=True)
    mismatch = _change_password(client, PASSWORD, NEW_PASSWORD, "something else entirely")
    assert mismatch.status_code == 400
    assert "The passwords do not match." in mismatch.get_data(as_text=True)
    short = _change_password(client, PASSWORD, "short", "short")
    assert short.status_code == 400
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert client.get("/me/profile").status_code == 200


def test_profile_needs_sign_in(app, client):
    """Anonymous: sent to sign in, for the page and both posts."""
    token = csrf_from(client, "/login")
    for method, url in (
        ("get", "/me/profile"),
        ("post", "/me/profile"),
        ("post", "/me/profile/password"),
    ):
        response = getattr(client, method)(url, data={"csrf_token": token})
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
