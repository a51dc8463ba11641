"""The bookings list (issue 15): upcoming first, past reachable, a date range, search by
person or title, status, pages; a page costs the same number of queries at any length."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event

from app.extensions import db
from tests.bookings.conftest import HX, is_fragment, local, weekday
from tests.conftest import login

ROW_RE = re.compile(r"<tr>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*><a [^>]*>([^<]+)</a>")


def _titles(response) -> list[str]:
    return [title for _, title in ROW_RE.findall(response.get_data(as_text=True))]


def _book(factory, cast, day, hour, title, people=None, learner=None):
    return factory.booking(
        None, cast.review, local(day, hour), people or [cast.agent], title=title, learner=learner
    )


def test_upcoming_first_soonest_at_the_top_and_past_on_its_own(app, client, factory, cast):
    """Upcoming: soonest first, nothing that has ended. Past: most recent first."""
    soon, later = weekday(3), weekday(20)
    _book(factory, cast, later, 10, "Later one")
    _book(factory, cast, soon, 10, "Soon one")
    _book(factory, cast, soon - timedelta(days=30), 10, "Old one")
    _book(factory, cast, soon - timedelta(days=10), 10, "Recent one")
    login(client, cast.manager.email)
    assert _titles(client.get("/bookings")) == ["Soon one", "Later one"]
    assert _titles(client.get("/bookings?show=past")) == ["Recent one", "Old one"]
    assert 'href="/bookings?show=past"' in client.get("/bookings").get_data(as_text=True)


def test_search_by_title_and_by_person(app, client, factory, cast):
    """The search matches the title, the holder, the learner and attendees (name or email)."""
    day = weekday(5)
    _book(factory, cast, day, 9, "Gateway review")
    _book(factory, cast, day, 11, "Catch-up", people=[cast.other_agent])
    _book(factory, cast, day, 14, "Progress", people=[cast.assessor], learner=cast.learner)
    login(client, cast.manager.email)
    assert _titles(client.get("/bookings?q=gateway")) == ["Gateway review"]
    assert _titles(client.get("/bookings?q=Ben+Brown")) == ["Catch-up"]
    assert _titles(client.get("/bookings?q=aisha")) == ["Progress"]
    assert _titles(client.get("/bookings?q=asa%40example")) == ["Progress"]
    assert _titles(client.get("/bookings?q=%25")) == []  # a wildcard is a plain character
    assert "No upcoming bookings match" in client.get("/bookings?q=zzz").get_data(as_text=True)


def test_date_range_and_status_together(app, client, factory, cast):
    """From/to are local dates, both inclusive; the status filter still applies."""
    a, b, c = weekday(5), weekday(12), weekday(19)
    _book(factory, cast, a, 10, "First")
    _book(factory, cast, b, 10, "Second")
    _book(factory, cast, c, 10, "Third")
    login(client, cast.manager.email)
    assert _titles(client.get(f"/bookings?from={b}&to={c}")) == ["Second", "Third"]
    assert _titles(client.get(f"/bookings?from={a}&to={a}")) == ["First"]
    assert _titles(client.get(f"/bookings?to={a}&from={b}")) == ["First", "Second"]  # swapped
    assert _titles(client.get("/bookings?status=cancelled")) == []
    assert _titles(client.get("/bookings?status=confirmed&from=garbage")) == [
        "First",
        "Second",
        "Third",
    ]


def test_pages_of_twenty_five_and_htmx_fragments(app, client, factory, cast):
    """30 upcoming bookings: 25 on page 1, 5 on page 2, links carry the filters; HTMX gets
    only the list."""
    first = weekday(3)
    for n in range(30):
        _book(factory, cast, first + timedelta(days=n // 5), 8 + (n % 5) * 2, f"B{n:02d}")
    login(client, cast.manager.email)
    page1 = client.get("/bookings?q=B")
    html = page1.get_data(as_text=True)
    assert len(_titles(page1)) == 25 and "1–25 of 30" in html
    assert 'href="/bookings?show=upcoming&amp;q=B&amp;page=2"' in html
    page2 = client.get("/bookings?q=B&page=2", headers=HX)
    assert is_fragment(page2) and _titles(page2) == [f"B{n:02d}" for n in range(25, 30)]
    assert "Previous page" in page2.get_data(as_text=True)
    assert _titles(client.get("/bookings?page=99999999")) == _titles(page1)  # ignored: page 1
    assert _titles(client.get("/bookings?page=50")) == []


def test_query_count_does_not_grow_with_the_page(app, client, factory, cast):
    """3 bookings or 25 with different people: the same number of queries for the list."""

    def count(url):
        with app.app_context():
            engine = db.engine
        seen = []

        def before(*args):
            seen.append(1)

        event.listen(engine, "before_cursor_execute", before)
        try:
            assert client.get(url, headers=HX).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", before)
        return len(seen)

    login(client, cast.manager.email)
    people = [cast.agent, cast.other_agent, cast.assessor]
    first = weekday(3)
    for n in range(3):
        _book(factory, cast, first, 8 + n * 2, f"S{n}", people=[people[n]], learner=cast.learner)
    small = count("/bookings")
    for n in range(22):
        who = factory.user("agent", name=f"Agent {n}")
        learner = factory.user("learner", name=f"Learner {n}")
        _book(
            factory,
            cast,
            first + timedelta(days=1 + n // 5),
            8 + (n % 5) * 2,
            f"L{n}",
            people=[who],
            learner=learner,
        )
    large = count("/bookings")
    assert large == small
