"""N1 in-app channel: the bell's count, the list, mark read, and nobody else's notifications."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, select

from app.database import begin_write, utcnow
from app.extensions import db
from app.notifications.models import Notification
from tests.conftest import at, csrf_from, login
from tests.notifications.conftest import deliver_all

HX = {"HX-Request": "true"}
BADGE_RE = re.compile(r'class="bell-badge" data-count="(\d+)"')


def _notify(app, user, title: str, *, read: bool = False, minutes_ago: int = 0, **fields) -> int:
    with app.app_context():
        begin_write()
        row = Notification(
            user_id=user.id,
            rule="meeting_invite",
            title=title,
            body=f"About {title}",
            created_at=utcnow() - timedelta(minutes=minutes_ago),
            read_at=utcnow() if read else None,
            **fields,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def _read_at(app, notification_id: int):
    with app.app_context():
        value = db.session.get(Notification, notification_id).read_at
        db.session.rollback()
        return value


def _badge(html: str) -> int:
    """The count in the header's bell (0 when it shows no badge)."""
    match = BADGE_RE.search(html)
    return int(match.group(1)) if match else 0


def test_list_is_newest_first_with_unread_highlighted_and_only_ones_own(app, client, factory):
    """The page lists the viewer's notifications newest first, marks unread ones, shows the
    count in the bell, and never shows another person's."""
    ada = factory.user("agent", email="ada@example.test")
    bob = factory.user("agent", email="bob@example.test")
    oldest = _notify(app, ada, "Oldest invite", read=True, minutes_ago=30)
    middle = _notify(app, ada, "Middle update", minutes_ago=20)
    newest = _notify(app, ada, "Newest reschedule", minutes_ago=10)
    _notify(app, bob, "Bob's private invite")
    login(client, ada.email)

    html = client.get("/me/notifications").get_data(as_text=True)

    positions = [html.index(t) for t in ("Newest reschedule", "Middle update", "Oldest invite")]
    assert positions == sorted(positions)
    assert "Bob&#39;s private invite" not in html
    for unread in (middle, newest):
        assert re.search(rf'id="notification-{unread}" class="notification is-unread"', html)
    assert re.search(rf'id="notification-{oldest}" class="notification"', html)
    assert html.count(">Mark as read<") == 2
    assert "Mark all read" in html
    assert _badge(html) == 2
    assert 'aria-live="polite"' in html


def test_empty_state(app, client, factory):
    """Someone with no notifications sees a friendly empty list and no badge."""
    ada = factory.user("learner", email="ada@example.test")
    login(client, ada.email)
    html = client.get("/me/notifications").get_data(as_text=True)
    assert "No notifications yet." in html
    assert "Mark all read" not in html
    assert _badge(html) == 0


def test_count_fragment_answers_only_when_the_number_changed(app, client, factory):
    """The poll says which number it shows: 204 while unchanged, the new badge otherwise."""
    ada = factory.user("agent", email="ada@example.test")
    _notify(app, ada, "First")
    _notify(app, ada, "Second")
    login(client, ada.email)
    page = client.get("/calendar").get_data(as_text=True)
    assert _badge(page) == 2
    assert 'hx-get="/me/notifications/count?seen=2"' in page
    assert 'hx-trigger="every 15s"' in page

    assert client.get("/me/notifications/count?seen=2", headers=HX).status_code == 204
    _notify(app, ada, "Third")
    response = client.get("/me/notifications/count?seen=2", headers=HX)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert _badge(fragment) == 3
    assert 'hx-get="/me/notifications/count?seen=3"' in fragment
    assert 'id="bell-count" hx-swap-oob="innerHTML"' in fragment
    assert response.headers["Cache-Control"] == "no-store"


def test_poll_interval_is_configurable(app, client, factory):
    """SLOTBOOK_BELL_POLL_SECONDS sets how often the bell asks (the browser test uses 1)."""
    app.config["SLOTBOOK_BELL_POLL_SECONDS"] = 3
    ada = factory.user("agent", email="ada@example.test")
    login(client, ada.email)
    page = client.get("/calendar").get_data(as_text=True)
    assert 'hx-trigger="every 3s"' in page and 'data-poll-seconds="3"' in page


def test_signed_out_poll_stops_and_page_asks_to_sign_in(app, client):
    """A tab whose session ended gets htmx's "stop polling" (286); a plain GET, the sign-in."""
    assert client.get("/me/notifications/count?seen=1", headers=HX).status_code == 286
    response = client.get("/me/notifications/count")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_count_is_one_indexed_query(app, client, factory):
    """Polling costs one COUNT on the notifications table, answered from its index."""
    ada = factory.user("agent", email="ada@example.test")
    for n in range(3):
        _notify(app, ada, f"Note {n}")
    login(client, ada.email)
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get("/me/notifications/count?seen=0", headers=HX)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert _badge(response.get_data(as_text=True)) == 3
    touching = [(s, p) for s, p in statements if "notifications" in s]
    assert len(touching) == 1, touching
    statement, parameters = touching[0]
    assert statement.lstrip().upper().startswith("SELECT COUNT(")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        assert "ix_notifications_user_unread" in " ".join(str(row) for row in plan)


def test_mark_as_read_without_javascript(app, client, factory):
    """A plain form post marks one read and comes back to the list with a message."""
    ada = factory.user("agent", email="ada@example.test")
    first = _notify(app, ada, "Meeting invite: Review")
    other = _notify(app, ada, "Meeting updated: Review")
    login(client, ada.email)
    token = csrf_from(client, "/me/notifications")

    response = client.post(f"/me/notifications/{first}/read", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/me/notifications"
    stamped = _read_at(app, first)
    assert stamped is not None and _read_at(app, other) is None
    page = client.get("/me/notifications").get_data(as_text=True)
    assert "Marked “Meeting invite: Review” as read." in page
    assert _badge(page) == 1

    again = client.post(f"/me/notifications/{first}/read", data={"csrf_token": token})
    assert again.status_code == 303
    assert _read_at(app, first) == stamped  # the first reading is kept


def test_mark_as_read_with_htmx_swaps_the_list_and_the_bell(app, client, factory):
    """HTMX gets the list fragment back, and the bell's badge out of band."""
    ada = factory.user("agent", email="ada@example.test")
    first = _notify(app, ada, "One")
    second = _notify(app, ada, "Two")
    login(client, ada.email)
    token = csrf_from(client, "/me/notifications")

    response = client.post(f"/me/notifications/{first}/read", headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="notifications"')
    assert re.search(rf'id="notification-{first}" class="notification"', html)
    assert re.search(rf'id="notification-{second}" class="notification is-unread"', html)
    assert 'id="bell-count" hx-swap-oob="innerHTML"' in html
    assert 'id="bell-poll"' in html and 'hx-swap-oob="true"' in html
    assert _badge(html) == 1
    assert "HX-Request" in response.headers["Vary"]


def test_mark_all_read_touches_only_ones_own(app, client, factory):
    """ "Mark all read" clears the viewer's unread notifications and nobody else's."""
    ada = factory.user("agent", email="ada@example.test")
    bob = factory.user("agent", email="bob@example.test")
    mine = [_notify(app, ada, f"Mine {n}") for n in range(3)]
    theirs = _notify(app, bob, "Theirs")
    login(client, ada.email)
    token = csrf_from(client, "/me/notifications")

    response = client.post("/me/notifications/read-all", data={"csrf_token": token})
    assert response.status_code == 303
    assert all(_read_at(app, n) is not None for n in mine)
    assert _read_at(app, theirs) is None
    page = client.get("/me/notifications").get_data(as_text=True)
    assert "Marked 3 notifications as read." in page
    assert _badge(page) == 0 and "Mark all read" not in page


def test_another_persons_notification_is_not_found(app, client, factory):
    """Marking someone else's notification (or a made-up id) read is a 404 that changes
    nothing; their title never appears."""
    ada = factory.user("agent", email="ada@example.test")
    bob = factory.user("owner", email="bob@example.test")
    theirs = _notify(app, bob, "Bob's appraisal")
    login(client, ada.email)
    token = csrf_from(client, "/me/notifications")
    for url in (f"/me/notifications/{theirs}/read", "/me/notifications/999999/read"):
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 404, url
        assert "appraisal" not in response.get_data(as_text=True)
    htmx = client.post(f"/me/notifications/{theirs}/read", headers={**HX, "X-CSRFToken": token})
    assert htmx.status_code == 404
    assert _read_at(app, theirs) is None


def test_links_lead_inside_slotbook_only(app, client, factory):
    """Each line links to its booking; a stored link to another site is never rendered."""
    ada = factory.user("agent", email="ada@example.test")
    kind = factory.booking_type(name="Review")
    booking = factory.booking(None, kind, at(3), [ada])
    _notify(app, ada, "Own path", url=f"/bookings/{booking.id}", booking_id=booking.id)
    _notify(app, ada, "Foreign url", url="//evil.example/x", booking_id=booking.id)
    _notify(app, ada, "Script url", url="javascript:alert(1)")
    login(client, ada.email)
    html = client.get("/me/notifications").get_data(as_text=True)
    assert html.count(f'<a href="/bookings/{booking.id}">') == 2
    assert "evil.example" not in html and "javascript:" not in html
    assert "Script url" in html and "Script url</a>" not in html


def test_a_booking_by_someone_else_reaches_the_bell(app, client, factory, smtp_server):
    """End to end: B books A; once the outbox is delivered, A's count and list show it, with
    a link to the booking, and only A (an attendee) among the bystanders."""
    ada = factory.user("agent", email="ada@example.test", name="Ada Agent")
    bystander = factory.user("agent", email="cy@example.test")
    boss = factory.user("booking-manager", email="boss@example.test", name="Bo Boss")
    kind = factory.booking_type(name="Progress review")
    booking = factory.booking(boss, kind, at(4), [boss, ada])
    login(client, ada.email)
    assert _badge(client.get("/me/notifications").get_data(as_text=True)) == 0

    deliver_all(app)

    html = client.get("/me/notifications").get_data(as_text=True)
    assert _badge(html) == 1
    assert f'<a href="/bookings/{booking.id}">' in html
    assert "Progress review" in html
    with app.app_context():
        owners = db.session.scalars(select(Notification.user_id)).all()
        db.session.rollback()
    assert ada.id in owners and bystander.id not in owners
