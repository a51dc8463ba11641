"""The calendar over HTTP: Me and Team scoping, permissions, filters, C2 titles, C3 labels,
page vs fragment (HTMX) and a statement count that does not grow with people or items."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import event

from app.accounts.models import Group, User
from app.database import begin_write
from app.extensions import db
from tests.calendar.conftest import MONDAY, local
from tests.conftest import login

# The calendar's queries (subqueries for Me, range filters, the statement count) run again on
# PostgreSQL in CI.
pytestmark = pytest.mark.db
TUESDAY = MONDAY + timedelta(days=1)


def page(client, **args) -> str:
    args.setdefault("date", MONDAY.isoformat())
    response = client.get("/calendar", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return response.get_data(as_text=True)


def items(html: str) -> list[str]:
    """The text of each calendar item, tags stripped, whitespace collapsed."""
    found = re.findall(r'<li class="cal-item[^"]*"[^>]*>(.*?)</li>', html, flags=re.S)
    return [html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", f).split())) for f in found]


def item_classes(html: str, text: str) -> str:
    """The class attribute of the item whose markup contains ``text``."""
    for match in re.finditer(r'<li class="(cal-item[^"]*)"[^>]*>(.*?)</li>', html, flags=re.S):
        if text in match.group(2):
            return match.group(1)
    raise AssertionError(f"no item with {text!r}")


def make_group(app, slug, members):
    with app.app_context():
        begin_write()
        group = Group(
            slug=slug, name=slug.title(), members=[db.session.get(User, m.id) for m in members]
        )
        db.session.add(group)
        db.session.commit()


@pytest.fixture
def team(app, factory):
    """A booking manager, two agents with a booking each on Monday, a learner, one type."""
    manager = factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    ann = factory.user("agent", email="ann@example.test", name="Ann Agent")
    bob = factory.user("agent", email="bob@example.test", name="Bob Agent")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    review = factory.booking_type(slug="review", name="Review")
    planning = factory.booking_type(
        slug="planning", name="Planning meeting", requires_approval=True
    )
    ann_booking = factory.booking(
        None, review, local(MONDAY, 10), [ann], learner=learner, title="Ann's review"
    )
    bob_booking = factory.booking(
        None, planning, local(MONDAY, 14), [bob], title="Bob's secret planning"
    )
    return dict(
        manager=manager, ann=ann, bob=bob, learner=learner, review=review, planning=planning,
        ann_booking=ann_booking, bob_booking=bob_booking,
    )  # fmt: skip


# --- landing and navigation -----------------------------------------------------------------


def test_staff_land_on_the_calendar_and_learners_on_their_bookings(client, team, app):
    """Home ("/") and the login redirect send staff to /calendar, learners to /bookings."""
    response = login(client, team["ann"].email)
    assert response.headers["Location"] == "/calendar"
    assert client.get("/").headers["Location"] == "/calendar"
    other = app.test_client()
    assert login(other, team["learner"].email).headers["Location"] == "/bookings"
    assert other.get("/").headers["Location"] == "/bookings"


def test_calendar_is_the_first_navigation_item(client, team):
    """The main navigation starts with Calendar, marked current on the calendar."""
    login(client, team["ann"].email)
    nav = page(client).split('<nav aria-label="Main">', 1)[1]
    first = re.search(r"<li><a [^>]*>([^<]+)</a>", nav)
    assert first.group(1) == "Calendar" and 'aria-current="page">Calendar' in nav


# --- Me and Team ------------------------------------------------------------------------------


def test_me_view_shows_only_the_viewers_own_bookings(client, team):
    """Ann's Me view lists her booking and nothing of Bob's, not even as busy time."""
    login(client, team["ann"].email)
    html = page(client, scope="me")
    assert items(html) == ["10:00–11:00 Ann's review Lee Learner"]
    assert "Bob" not in html.split('id="calendar"', 1)[1]
    assert f"/bookings/{team['bob_booking'].id}" not in html


def test_learner_sees_their_own_bookings_in_me_view(client, team):
    """A learner (no calendar.view_team) has a Me view of the bookings they are the learner of."""
    login(client, team["learner"].email)
    html = page(client)
    assert items(html) == ["10:00–11:00 Ann's review Lee Learner"]
    assert 'id="cal-team"' not in html  # no Team switch offered


def test_team_view_needs_the_permission(client, team):
    """Without calendar.view_team the Team view is 403, page and fragment alike."""
    login(client, team["learner"].email)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get("/calendar?scope=team", headers=headers)
        assert response.status_code == 403
        assert "HX-Request" in response.headers.get("Vary", "")


def test_agent_sees_other_peoples_bookings_in_team_view_only_as_busy(client, team):
    """Bob's booking is in Bob's lane as "Busy": no title, no link, no status leaks to Ann."""
    login(client, team["ann"].email)
    html = page(client, scope="team")
    assert "Bob&#39;s secret planning" not in html and "secret" not in html
    assert f"/bookings/{team['bob_booking'].id}" not in html
    assert "[PENDING]" not in html
    bob_row = html.split('<th scope="row">Bob Agent</th>', 1)[1].split("</tr>", 1)[0]
    assert items(bob_row) == ["14:00–15:00 Busy"]
    assert "item-hidden" in item_classes(bob_row, "Busy")
    assert f'href="/bookings/{team["ann_booking"].id}"' in html  # her own stays a link


def test_manager_sees_every_title_and_lane_in_team_view(client, team):
    """A booking manager (bookings.view_all) sees titles, pending marks and links in every lane."""
    login(client, team["manager"].email)
    html = page(client)  # Team is the default for people who see every booking
    lanes = re.findall(r'<th scope="row">([^<]+)</th>', html)
    assert lanes == ["Ann Agent", "Bob Agent"]  # bookable staff only, by name (issue 15)
    texts = items(html)
    assert "14:00–15:00 [PENDING] Bob's secret planning" in texts
    bob_id = team["bob_booking"].id
    assert f'href="/bookings/{bob_id}" hx-get="/bookings/{bob_id}" hx-target="#drawer"' in html
    assert "is-provisional" in item_classes(html, "[PENDING]")


def test_day_view_has_one_column_per_person(client, team):
    """Team day view: a column per person, each booking in its holder's column."""
    login(client, team["manager"].email)
    html = page(client, scope="team", view="day")
    heads = re.findall(r'<h2 class="tg-colhead[^"]*" id="cal-col-\d+">([^<]+)</h2>', html)
    assert heads == ["Ann Agent", "Bob Agent"]
    columns = html.split('<ol class="tg-col')[1:]
    assert [items(c) for c in columns] == [
        ["10:00–11:00 Ann's review Lee Learner"],
        ["14:00–15:00 [PENDING] Bob's secret planning"],
    ]


def test_empty_week_says_so(client, team):
    """A week without bookings shows an empty state rather than nothing."""
    login(client, team["ann"].email)
    html = page(client, scope="me", date=(MONDAY + timedelta(days=14)).isoformat())
    assert "No bookings this week" in html and items(html) == []
    html = page(client, scope="me", view="day", date=TUESDAY.isoformat())
    assert "No bookings on this day" in html


# --- filters ----------------------------------------------------------------------------------


def test_group_filter_limits_the_lanes(app, client, team):
    """group=SLUG shows that group's members only; an unknown group is a 400."""
    make_group(app, "assessors", [team["bob"]])
    login(client, team["manager"].email)
    html = page(client, scope="team", group="assessors")
    assert re.findall(r'<th scope="row">([^<]+)</th>', html) == ["Bob Agent"]
    assert "Ann&#39;s review" not in html
    assert client.get("/calendar?scope=team&group=nobody").status_code == 400


def test_type_filter_limits_the_bookings(client, team):
    """type=SLUG shows bookings of that type only; an unknown type is a 400."""
    login(client, team["manager"].email)
    texts = items(page(client, scope="team", type="review"))
    assert texts == ["10:00–11:00 Ann's review Lee Learner"]
    assert client.get("/calendar?type=nope").status_code == 400


def test_cancelled_bookings_are_hidden_unless_asked_for(app, client, team):
    """Cancelled and rejected bookings appear only with cancelled=1, marked as such."""
    from app.bookings import service
    from app.bookings.models import Booking

    with app.app_context():
        begin_write()
        service.cancel(None, db.session.get(Booking, team["ann_booking"].id))
        db.session.commit()
    login(client, team["ann"].email)
    assert items(page(client, scope="me")) == []
    texts = items(page(client, scope="me", cancelled="1"))
    assert texts == ["10:00–11:00 Ann's review Lee Learner Cancelled"]


@pytest.mark.parametrize(
    "query",
    ["view=month", "scope=all", "date=tomorrow", "date=1900-01-01", "group=" + "x" * 100],
)
def test_bad_query_values_are_a_clear_400(client, team, query):
    """Unreadable values get a 400 with a message (page or fragment), never a 500."""
    login(client, team["manager"].email)
    response = client.get(f"/calendar?{query}")
    assert response.status_code == 400 and "Cannot show that" in response.get_data(as_text=True)
    fragment = client.get(f"/calendar?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 400 and "<html" not in fragment.get_data(as_text=True)


# --- C2 and C6: external busy time ---------------------------------------------------------


def test_busy_blocks_appear_in_team_view_only(client, team, rows):
    """C6: Me view shows Slotbook bookings only; Team lanes show the external busy time."""
    rows.busy(team["ann"], local(MONDAY, 15), local(MONDAY, 16))
    login(client, team["ann"].email)
    assert items(page(client, scope="me")) == ["10:00–11:00 Ann's review Lee Learner"]
    ann_row = page(client, scope="team").split('<th scope="row">Ann Agent</th>', 1)[1]
    ann_row = ann_row.split("</tr>", 1)[0]
    assert items(ann_row) == [
        "10:00–11:00 Ann's review Lee Learner",
        "15:00–16:00 Busy (from a linked calendar)",
    ]


def test_external_titles_follow_c2(client, team, rows):
    """Titles only from organisation Microsoft 365 with "Show event details" on; a personal
    account's or a CalDAV calendar's title never reaches the page."""
    ann = team["ann"]
    rows.busy(ann, local(TUESDAY, 9), local(TUESDAY, 10), source="graph-org", title="Board")
    rows.busy(ann, local(TUESDAY, 11), local(TUESDAY, 12), source="graph:7", title="Dentist")
    rows.busy(ann, local(TUESDAY, 13), local(TUESDAY, 14), source="caldav:2", title="Gym")
    rows.busy(ann, local(TUESDAY, 15), local(TUESDAY, 16), status="tentative", source="ics:1")
    rows.busy(ann, local(TUESDAY, 17), local(TUESDAY, 18), status="free", source="caldav:2")
    login(client, team["manager"].email)

    def ann_tuesday() -> list[str]:
        html = page(client, scope="team", view="day", date=TUESDAY.isoformat())
        return items(html.split('<ol class="tg-col')[1])  # Ann's column

    assert ann_tuesday() == [
        "09:00–10:00 Private event (from a linked calendar)",
        "11:00–12:00 Busy (from a linked calendar)",
        "13:00–14:00 Busy (from a linked calendar)",
        "15:00–16:00 Busy (tentative) (from a linked calendar)",
    ]  # "free" time is not busy and is not drawn
    rows.setting("show_event_details", True)
    texts = ann_tuesday()
    assert texts[0] == "09:00–10:00 Board (from a linked calendar)"
    assert not any("Dentist" in t or "Gym" in t for t in texts)


# --- C3: conflicts --------------------------------------------------------------------------


def test_booking_over_a_busy_block_is_striped_and_labelled(client, team, rows):
    """Ann's 10:00 booking overlaps her 10:30–11:30 busy block: red stripes and words, in both
    Me and Team views; the busy block itself is not marked."""
    rows.busy(team["ann"], local(MONDAY, 10, 30), local(MONDAY, 11, 30))
    login(client, team["ann"].email)
    for scope in ("me", "team"):
        html = page(client, scope=scope)
        assert "has-conflict" in item_classes(html, "Ann&#39;s review")
        assert "Conflicts with: Busy 10:30–11:30" in html
    assert "has-conflict" not in item_classes(html, '<span class="cal-time">10:30–11:30</span>')


def test_touching_busy_block_is_no_conflict(client, team, rows):
    """Busy 11:00–12:00 right after a 10:00–11:00 booking is back to back, not a conflict."""
    rows.busy(team["ann"], local(MONDAY, 11), local(MONDAY, 12))
    rows.busy(team["ann"], local(MONDAY, 9), local(MONDAY, 10))
    login(client, team["ann"].email)
    html = page(client, scope="team")
    assert "has-conflict" not in html and "Conflicts with" not in html


def test_two_bookings_of_one_person_both_show_the_conflict(client, team, rows):
    """Booking against booking: each names the other; a title the viewer may not see is "Busy"."""
    rows.booking(
        team["review"], team["ann"], local(MONDAY, 10, 30), local(MONDAY, 11), title="Extra"
    )
    login(client, team["manager"].email)
    html = page(client, scope="team")
    texts = items(html)
    assert "10:00–11:00 Ann's review Conflicts with: Extra 10:30–11:00 Lee Learner" in texts
    assert "10:30–11:00 Extra Conflicts with: Ann's review 10:00–11:00" in texts
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, team["learner"].email)  # sees Ann's review (their own), not "Extra"
    html = page(client)
    assert "Conflicts with: Busy 10:30–11:00" in html and "Extra" not in html


def test_cancelled_bookings_never_conflict(app, client, team, rows):
    """An overlapping cancelled booking is no conflict, and a cancelled one is never striped."""
    other = rows.booking(team["review"], team["ann"], local(MONDAY, 10), local(MONDAY, 11),
                         title="Dropped", status="cancelled")  # fmt: skip
    rows.busy(team["ann"], local(MONDAY, 10), local(MONDAY, 11))
    login(client, team["manager"].email)
    html = page(client, scope="team", cancelled="1")
    assert "has-conflict" not in item_classes(html, "Dropped")
    assert "Dropped" not in item_classes(html, "Ann&#39;s review")
    assert f"/bookings/{other}" in html


def _token(client) -> str:
    from tests.conftest import CSRF_RE

    return CSRF_RE.search(client.get("/calendar").get_data(as_text=True)).group(1)


# --- time zones ---------------------------------------------------------------------------


def test_times_are_shown_in_the_viewers_zone_across_the_clock_change(app, client, factory):
    """A New York agent sees a London 15:00 booking at 10:00; the header names the zone; the
    London week with the March change names GMT and BST and keeps 09:00 at 09:00."""
    ny = factory.user(
        "agent", email="ny@example.test", name="Nia York", timezone="America/New_York"
    )
    kind = factory.booking_type(slug="rev", name="Review")
    factory.booking(None, kind, local(MONDAY, 15), [ny])
    change_week = date(2030, 3, 25)
    factory.booking(None, kind, local(change_week, 9), [ny])  # Monday, GMT
    factory.booking(None, kind, local(date(2030, 4, 1), 9), [ny])  # Monday after, BST
    login(client, ny.email)
    html = page(client, scope="me")
    assert "America/New_York (EST)" in html and items(html) == ["10:00–11:00 Review"]
    london = factory.user("agent", email="lo@example.test", name="Lo Don")
    factory.booking(None, kind, local(date(2030, 3, 31), 9), [london])  # Sunday, the change day
    client2 = app.test_client()
    login(client2, london.email)
    html = page(client2, scope="me", date="2030-03-27")
    assert "Europe/London (GMT/BST)" in html and items(html) == ["09:00–10:00 Review"]


# --- HTMX: one URL, page or fragment ----------------------------------------------------------


def test_page_fragment_and_history_restore(client, team):
    """Without HX-Request: the whole page with the drawer container; with it: only #calendar;
    a history restore gets the page again. Every answer varies on HX-Request."""
    login(client, team["manager"].email)
    url = f"/calendar?view=week&date={MONDAY.isoformat()}&scope=team"
    full = client.get(url)
    body = full.get_data(as_text=True)
    assert "<html" in body and '<div id="drawer"' in body and 'id="calendar"' in body
    assert "hx-indicator" in body and 'id="cal-loading"' in body
    fragment = client.get(url, headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="calendar"') and "<html" not in text
    assert 'id="drawer"' not in text
    restore = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)
    for response in (full, fragment, restore):
        assert response.status_code == 200
        assert "HX-Request" in response.headers["Vary"]


def test_navigation_links_push_urls_that_reload_the_same_view(client, team):
    """Previous/next/today, week/day and Me/Team are real links (work without JS) that HTMX
    follows into #calendar and pushes to the address bar."""
    login(client, team["manager"].email)
    html = page(client, scope="team", type="review")
    toolbar = html.split('class="cal-toolbar"', 1)[1].split("</nav>", 1)[0]
    assert 'hx-target="#calendar"' in toolbar and 'hx-push-url="true"' in toolbar
    links = dict(re.findall(r'<a id="(cal-[a-z]+)" class="[^"]*" href="([^"]+)"', html))
    links = {key: url.replace("&amp;", "&") for key, url in links.items()}
    assert links["cal-prev"] == "/calendar?view=week&date=2030-01-07&scope=team&type=review"
    assert links["cal-next"] == "/calendar?view=week&date=2030-01-21&scope=team&type=review"
    assert "view=day" in links["cal-day"] and "scope=me" in links["cal-me"]
    assert client.get(links["cal-next"]).status_code == 200
    views = re.findall(r'<a id="cal-[a-z0-9-]+"[^>]*>', html)
    assert len(views) == 7 + 7  # prev, today, next, week, day, me, team; one per day heading
    for tag in views:
        assert 'hx-target="#calendar"' in tag and 'hx-push-url="true"' in tag, tag
    assert 'hx-get="/bookings/new?day=2030-01-14" hx-target="#drawer"' in html


# --- constant statement count -------------------------------------------------------------------


def _statements(app, client, url) -> tuple[int, str]:
    with app.app_context():
        engine = db.engine  # no app context may stay open around requests (tests/conftest.py)
    seen: list[str] = []

    def count(*args):
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(seen), response.get_data(as_text=True)


def test_team_week_statement_count_does_not_grow_with_people_or_items(app, client, factory, rows):
    """3 people vs 25 people (with bookings, attendees and busy blocks each): equal counts."""
    manager = factory.user("booking-manager", email="bea@example.test", name="Bea")
    kind = factory.booking_type(slug="review", name="Review", duration_minutes=30)
    learner = factory.user("learner", name="Lee")
    people = [factory.user("agent", name=f"Agent {n:02d}") for n in range(25)]
    for n, person in enumerate(people):
        for day in range(5):
            when = MONDAY + timedelta(days=day)
            factory.booking(None, kind, local(when, 9 + n % 3), [person],
                            learner=learner if n == 0 and day == 0 else None)  # fmt: skip
            rows.busy(person, local(when, 9 + n % 3), local(when, 10 + n % 3))
    make_group(app, "three", people[:3])
    make_group(app, "all", people)
    login(client, manager.email)
    client.get("/calendar")  # first request of the session warms nothing we count
    base = f"/calendar?view=week&date={MONDAY.isoformat()}&scope=team&group="
    three, html3 = _statements(app, client, base + "three")
    twentyfive, html25 = _statements(app, client, base + "all")
    assert html3.count('<th scope="row">') == 3 and html25.count('<th scope="row">') == 25
    assert html25.count("has-conflict") == 125
    assert three == twentyfive, (three, twentyfive)
    me, _ = _statements(app, client, f"/calendar?view=week&date={MONDAY.isoformat()}&scope=me")
    assert me <= twentyfive
