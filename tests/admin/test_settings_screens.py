"""Settings screens (issue [09]): every section renders with its help text, saves all or
nothing, audits each change (who, old -> new), is for ``settings.manage`` only and needs
CSRF; the new Mailer and UX settings take effect (a real email, the public picker's HTML);
the test email reports success or the SMTP error in words."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from app.admin.settings import SECTIONS, SETTINGS, contrast_ratio, section_settings
from app.bookings.models import AuditEntry
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, free_port, login
from tests.notifications import conftest as _mail
from tests.notifications.conftest import deliver_all
from tests.public import conftest as _public

smtp_server = _mail.smtp_server  # the real local SMTP server fixture
public = _public.public  # one agent and a public booking type

SCREENS = [s.slug for s in SECTIONS if s.endpoint is None]


@pytest.fixture
def admin(factory):
    return factory.user("administrator", email="admin@example.test", name="Adam Admin")


@pytest.fixture
def token(client, admin):
    login(client, admin.email)
    return csrf_from(client, "/admin/settings/general")


def _post(client, slug: str, token: str, data: dict, **kwargs):
    return client.post(f"/admin/settings/{slug}", data={**data, "csrf_token": token}, **kwargs)


def _value(app, key: str):
    from app.admin.settings import get_setting

    with app.app_context():
        value = get_setting(key)
        db.session.rollback()
    return value


def _audit(app) -> list[tuple[int | None, str, dict]]:
    with app.app_context():
        rows = [
            (e.actor_id, e.action, e.changes)
            for e in db.session.scalars(
                select(AuditEntry).where(AuditEntry.booking_id.is_(None)).order_by(AuditEntry.id)
            )
        ]
        db.session.rollback()
    return rows


# --- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SCREENS)
def test_each_section_renders_every_setting_with_help(client, token, slug):
    """Each section lists its settings as fields named by key, each with seed-style help,
    and the section navigation links every section, Notifications included."""
    html = client.get(f"/admin/settings/{slug}").get_data(as_text=True)
    assert section_settings(slug), f"section {slug} has no settings"
    for setting in section_settings(slug):
        assert f'name="{setting.key}"' in html, setting.key
        assert setting.help, f"{setting.key} has no help text"
        assert setting.help.replace("'", "&#39;") in html, setting.key
    assert 'href="/admin/notifications"' in html
    assert 'aria-current="page">' in html
    for other in SCREENS:
        assert f'href="/admin/settings/{other}"' in html


def test_every_setting_has_help_and_belongs_to_a_screen():
    """No setting is left without words or without a place to change it."""
    slugs = {s.slug for s in SECTIONS}
    for key, setting in SETTINGS.items():
        assert setting.help, key
        assert setting.section in slugs | {"branding"}, key


def test_index_opens_the_first_section_and_unknown_sections_are_404(client, token):
    """/admin/settings goes to General; an unknown or own-screen section is a 404."""
    response = client.get("/admin/settings")
    assert response.status_code == 302 and response.headers["Location"].endswith("/general")
    assert client.get("/admin/settings/nope").status_code == 404
    assert client.get("/admin/settings/notifications").status_code == 404
    assert _post(client, "nope", token, {}).status_code == 404


def test_settings_link_in_the_nav_only_for_settings_managers(client, factory, admin):
    """The main navigation offers Settings to those with settings.manage, not to agents."""
    agent = factory.user("agent", email="agent@example.test")
    login(client, agent.email)
    assert 'href="/admin/settings"' not in client.get("/profile").get_data(as_text=True)
    client.get("/logout")
    other = factory.user("owner", email="owner@example.test")
    fresh = client.application.test_client()
    login(fresh, other.email)
    assert 'href="/admin/settings"' in fresh.get("/profile").get_data(as_text=True)


# --- saving --------------------------------------------------------------------------------


def test_save_changes_values_and_audits_each_change(app, client, token, admin):
    """A post saves typed values; each changed setting gets one audit entry (who, old ->
    new), unchanged ones none; the section lists the change."""
    response = _post(
        client,
        "general",
        token,
        {
            "max_bookings_per_contact_per_day": "3",
            "contact_required_fields": "both",
            "public_scheduling_enabled": ["n", "y"],
            "show_unassigned_bookings": "y",  # already true: no entry
        },
    )
    assert response.status_code == 303
    assert _value(app, "max_bookings_per_contact_per_day") == 3
    assert _value(app, "contact_required_fields") == "both"
    assert _value(app, "public_scheduling_enabled") is True
    entries = _audit(app)
    assert sorted(entries, key=repr) == sorted(
        [
            (admin.id, "setting_changed", {"max_bookings_per_contact_per_day": [1, 3]}),
            (admin.id, "setting_changed", {"contact_required_fields": ["email", "both"]}),
            (admin.id, "setting_changed", {"public_scheduling_enabled": [False, True]}),
        ],
        key=repr,
    )
    page = client.get("/admin/settings/general").get_data(as_text=True)
    assert "1 → 3" in page and "Adam Admin" in page and "email → both" in page


def test_unticked_checkbox_and_empty_list_are_saved_as_off(app, client, token):
    """The hidden "n" before a checkbox means an unticked box turns the setting off; the
    hidden empty value of a list means none ticked is an empty list."""
    assert _post(client, "general", token, {"show_unassigned_bookings": "n"}).status_code == 303
    assert _value(app, "show_unassigned_bookings") is False
    response = _post(client, "calendars", token, {"personal_providers": ["", "ics"]})
    assert response.status_code == 303
    assert _value(app, "personal_providers") == ["ics"]


def test_a_partial_post_changes_only_what_it_carries(app, client, token):
    """Fields absent from a post are left alone (other tests post one setting)."""
    before = {k: _value(app, k) for k, s in SETTINGS.items() if s.section == "time"}
    assert _post(client, "time", token, {"reminder_minutes": "30"}).status_code == 303
    after = {k: _value(app, k) for k, s in SETTINGS.items() if s.section == "time"}
    assert after == {**before, "reminder_minutes": 30}


def test_htmx_post_returns_the_fragment_with_a_message(app, client, token):
    """HTMX gets the section fragment back (no page chrome), with what was saved."""
    response = _post(
        client, "time", token, {"join_early_minutes": "10"}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Vary" in response.headers
    assert html.lstrip().startswith('<div id="settings-section" data-swap-errors>')
    assert "<nav" not in html
    assert "Time settings saved (1 changed)." in html
    assert _value(app, "join_early_minutes") == 10


@pytest.mark.parametrize(
    ("slug", "data", "message"),
    [
        ("general", {"max_bookings_per_contact_per_day": "many"}, "enter a whole number"),
        ("general", {"max_bookings_per_contact_per_day": "101"}, "must be at most 100"),
        ("general", {"max_bookings_per_contact_per_day": "1_0"}, "enter a whole number"),
        ("time", {"reminder_minutes": "9" * 6000}, "enter a whole number"),
        ("general", {"contact_required_fields": "fax"}, "must be one of"),
        ("general", {"organisation_timezone": "Mars/Olympus"}, "unknown time zone"),
        ("general", {"organisation_name": "   "}, "enter a name"),
        ("general", {"public_scheduling_enabled": "maybe"}, "expected yes or no"),
        ("time", {"reminder_minutes": "-5"}, "must be at least 0"),
        ("time", {"day_start": "25:00"}, "expected a time as HH:MM"),
        ("time", {"day_start": "18:00", "day_end": "09:00"}, "must be later than"),
        ("calendars", {"personal_providers": ["", "yahoo"]}, "unknown choice"),
        ("calendars", {"slot_availability_percentage": "0"}, "must be at least 1"),
        ("mailer", {"mailer_from_address": "desk at example"}, "is not an email address"),
        ("mailer", {"mailer_reply_to": "a@b.c\nBcc: x@y.z"}, "is not an email address"),
        ("ux", {"slot_text_colour": "black"}, "expected a colour as #rrggbb"),
        ("ux", {"slot_available_colour": "#12345g"}, "expected a colour as #rrggbb"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(app, client, token, slug, data, message):
    """One bad field among good ones: a 422 naming the problem, and no row changes (the
    good fields are not saved either, no audit entry is written)."""
    good = {
        "general": {"max_bookings_per_contact_per_day": "7"},
        "time": {"reminder_minutes": "20"},
    }
    before = db_state(app)
    response = _post(client, slug, token, {**good.get(slug, {}), **data})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html.replace("&#39;", "'"), html[:3000]
    assert "Nothing was saved." in html
    assert changed_tables(before, db_state(app)) == []


def test_unreadable_slot_colours_are_refused_with_the_ratio(app, client, token):
    """Text and background below 4.5:1 are refused with the ratio named; readable ones pass."""
    before = db_state(app)
    response = _post(
        client, "ux", token, {"slot_text_colour": "#777777", "slot_selected_colour": "#888888"}
    )
    html = response.get_data(as_text=True)
    ratio = contrast_ratio("#777777", "#888888")
    assert response.status_code == 422
    assert f"contrast of {ratio:.2f}:1" in html and "at least 4.5:1" in html
    assert changed_tables(before, db_state(app)) == []
    # The same text colour on the default available background is also too light: named too.
    assert "Available time slot background" in html
    ok = _post(
        client, "ux", token, {"slot_text_colour": "#000000", "slot_selected_colour": "#ffd966"}
    )
    assert ok.status_code == 303
    assert _value(app, "slot_selected_colour") == "#ffd966"


def test_contrast_ratio_matches_wcag_examples():
    """Black on white is 21:1, a colour on itself 1:1, #767676 on white just passes AA."""
    assert round(contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert contrast_ratio("#2457a7", "#2457a7") == 1.0
    assert 4.5 <= contrast_ratio("#767676", "#ffffff") < 4.6


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("owner", True),
        ("administrator", True),
        ("manager", False),
        ("booking-manager", False),
        ("agent", False),
        ("learner", False),
    ],
)
def test_permission_by_role(app, client, factory, role, allowed):
    """Only roles with settings.manage (owner, administrator) see or change settings."""
    person = factory.user(role, email=f"{role}@example.test")
    login(client, person.email)
    token = csrf_from(client, "/profile" if role != "learner" else "/me/notifications")
    before = db_state(app)
    for slug in SCREENS:
        assert client.get(f"/admin/settings/{slug}").status_code == (200 if allowed else 403)
    response = _post(client, "time", token, {"reminder_minutes": "45"})
    assert response.status_code == (303 if allowed else 403)
    if not allowed:
        assert changed_tables(before, db_state(app)) == []
        assert _post(client, "mailer/test", token, {}).status_code == 403
    else:
        assert _value(app, "reminder_minutes") == 45


def test_signed_out_visitors_are_sent_to_sign_in(app, client):
    """No session: the screens redirect to the sign-in page and a post changes nothing."""
    response = client.get("/admin/settings/general")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    before = db_state(app)
    client.post("/admin/settings/time", data={"reminder_minutes": "5"})
    assert changed_tables(before, db_state(app)) == []


def test_a_post_without_csrf_token_is_refused(app, client, token):
    """A forged post (no token) is a 400 and changes nothing."""
    before = db_state(app)
    response = client.post("/admin/settings/time", data={"reminder_minutes": "5"})
    assert response.status_code == 400
    assert changed_tables(before, db_state(app)) == []


# --- the new settings take effect -------------------------------------------------------------


def test_mailer_sender_and_reply_to_are_on_real_emails(app, client, token, factory, smtp_server):
    """From name, from address and reply-to saved on the Mailer screen are on the next real
    email (a password reset, delivered through the outbox to the local SMTP server)."""
    response = _post(
        client,
        "mailer",
        token,
        {
            "mailer_from_name": "Riverside Booking Desk",
            "mailer_from_address": "desk@riverside.example",
            "mailer_reply_to": "help@riverside.example",
        },
    )
    assert response.status_code == 303
    factory.user("agent", email="known@example.test")
    visitor = app.test_client()
    reset = visitor.post(
        "/forgot-password",
        data={"email": "known@example.test", "csrf_token": csrf_from(visitor, "/forgot-password")},
    )
    assert reset.status_code == 200
    deliver_all(app)
    [mail] = smtp_server.to("known@example.test")
    assert mail.message["From"] == "Riverside Booking Desk <desk@riverside.example>"
    assert mail.message["Reply-To"] == "help@riverside.example"


def test_without_a_from_address_the_server_sender_is_used(app, client, token, smtp_server):
    """An empty from address falls back to MAIL_DEFAULT_SENDER and no Reply-To is added."""
    _post(client, "mailer", token, {"mailer_from_address": "", "mailer_reply_to": ""})
    response = client.post("/admin/settings/mailer/test", data={"csrf_token": token})
    assert response.status_code == 303
    [mail] = smtp_server.to("admin@example.test")
    assert app.config["MAIL_DEFAULT_SENDER"] in mail.message["From"]
    assert mail.message["Reply-To"] is None


def test_test_email_reaches_the_admin_through_smtp(app, client, token, smtp_server):
    """ "Send test email" sends one message to the signed-in admin with the saved sender and
    says so (HTMX gets the sentence as a fragment)."""
    _post(
        client,
        "mailer",
        token,
        {"mailer_from_name": "Desk", "mailer_from_address": "desk@example.org"},
    )
    response = client.post(
        "/admin/settings/mailer/test", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "A test email was sent to admin@example.test" in html and 'role="status"' in html
    [mail] = smtp_server.messages
    assert mail.to == ["admin@example.test"]
    assert mail.message["From"] == "Desk <desk@example.org>"
    assert mail.subject == "Slotbook test email"


def test_test_email_to_a_closed_port_reports_the_error_in_words(app, client, token):
    """Nothing listening on the SMTP port: the admin reads that the connection was refused,
    no 500, and nothing is written."""
    port = free_port()
    app.config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_USE_SSL=False
    )
    before = db_state(app)
    response = client.post(
        "/admin/settings/mailer/test", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"The test email was not sent: the connection to 127.0.0.1:{port} was refused" in html
    assert "nothing is listening there" in html and 'role="alert"' in html
    assert changed_tables(before, db_state(app)) == []
    # Without JavaScript: a redirect and the same sentence as a flash message.
    plain = client.post(
        "/admin/settings/mailer/test", data={"csrf_token": token}, follow_redirects=True
    )
    assert "was refused" in plain.get_data(as_text=True)


def test_slot_colours_are_applied_to_the_public_picker(app, client, token, public):
    """Colours saved on the UX screen are the public picker's CSS custom properties, which
    public.css uses for available and selected times."""
    response = _post(
        client,
        "ux",
        token,
        {
            "slot_text_colour": "#101010",
            "slot_available_colour": "#c8f0d0",
            "slot_selected_colour": "#a8c8f8",
        },
    )
    assert response.status_code == 303
    html = app.test_client().get("/book/consultation").get_data(as_text=True)
    assert (
        'style="--slot-text: #101010; --slot-available: #c8f0d0; --slot-selected: #a8c8f8"' in html
    )
    assert 'class="slot"' in html or 'class="avail' in html
    css = app.test_client().get("/static/css/public.css").get_data(as_text=True)
    assert "background:var(--slot-available" in css and "background:var(--slot-selected" in css
    assert "color:var(--slot-text" in css


def test_cli_set_keeps_working_and_checks_the_same_rules(app):
    """`flask settings set` sets the new keys and refuses an unreadable colour the same way."""
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["settings", "set", "mailer_reply_to", "help@example.org"])
    assert ok.exit_code == 0, ok.output
    assert _value(app, "mailer_reply_to") == "help@example.org"
    bad = runner.invoke(args=["settings", "set", "slot_available_colour", "#222222"])
    assert bad.exit_code != 0 and "contrast of" in bad.output
    listing = runner.invoke(args=["settings", "list"]).output
    assert 'mailer_reply_to = "help@example.org"  (changed)' in listing
    assert (
        f"slot_available_colour = {json.dumps(SETTINGS['slot_available_colour'].default)}"
        in listing
    )
    assert re.search(r"^slot_text_colour = ", listing, re.M)
    assert (None, "setting_changed", {"mailer_reply_to": ["", "help@example.org"]}) in _audit(app)


def test_command_line_changes_are_listed_on_the_screen(app, client, token):
    """A change made with `flask settings set` is audited without a person and shown as
    "Command line" under the section's form."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["settings", "set", "reminder_minutes", "90"]).exit_code == 0
    page = client.get("/admin/settings/time").get_data(as_text=True)
    assert "<td>Command line</td>" in page and "60 → 90" in page


def test_test_email_holds_no_database_lock_while_smtp_hangs(app, factory, smtp_server):
    """While the SMTP server says nothing, another admin's save goes through at once (the
    test email's request closed its transaction before talking to SMTP); once the server
    answers, the test email is sent and reported."""
    import threading
    import time

    from tests.fakes.holding_relay import HoldingRelay

    relay = HoldingRelay(smtp_server.port, holding=True)
    app.config["MAIL_PORT"] = relay.port
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    admin = factory.user("administrator", email="admin@example.test", name="Adam Admin")
    sender, saver = app.test_client(), app.test_client()
    login(sender, owner.email)
    login(saver, admin.email)
    sender_token = csrf_from(sender, "/admin/settings/mailer")
    saver_token = csrf_from(saver, "/admin/settings/time")
    answers: list = []
    thread = threading.Thread(
        target=lambda: answers.append(
            sender.post(
                "/admin/settings/mailer/test",
                data={"csrf_token": sender_token},
                headers={"HX-Request": "true"},
            )
        )
    )
    thread.start()
    try:
        assert relay.held.wait(5), "the test email never reached the SMTP server"
        started = time.monotonic()
        saved = _post(saver, "time", saver_token, {"reminder_minutes": "25"})
        assert saved.status_code == 303
        assert time.monotonic() - started < 2
        assert _value(app, "reminder_minutes") == 25
    finally:
        relay.release()
        thread.join(15)
        relay.close()
    [answer] = answers
    assert "A test email was sent to owner@example.test" in answer.get_data(as_text=True)
    assert [m.to for m in smtp_server.messages] == [["owner@example.test"]]


def test_time_zone_is_chosen_from_the_zone_list(client, token):
    """The organisation's zone is a list of real zones with the current one selected."""
    html = client.get("/admin/settings/general").get_data(as_text=True)
    field = re.search(r'<select id="s-organisation_timezone".*?</select>', html, re.S).group(0)
    assert "<option selected>Europe/London</option>" in field
    assert "<option>America/New_York</option>" in field
