"""At a phone's width (390 px) no page scrolls sideways, and axe-core finds nothing serious
([13] acceptance 1 and 2). The demo organisation is loaded and each role walks every page it
can reach by following links from where it lands, one page per route (the first URL found
for it); the public visitor does the same from /book. Only the calendar grid and wide tables
scroll, inside their own boxes (``tests.browser.test_journeys_visitor.WIDEST`` names what
sticks out otherwise)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from app.demo import DEMO_LOGINS, DEMO_PASSWORD
from tests.browser.conftest import PHONE_WIDTH, assert_accessible, sign_in
from tests.browser.test_journeys_visitor import _fits

# Not pages: files, the API, feeds, and what only makes sense inside another page.
SKIP_PREFIXES = ("/api/", "/static/", "/feeds/", "/branding/")
SKIP_SUFFIXES = (".ics", ".csv", ".json", ".png", ".svg", ".jpg")
MAX_PAGES = 80  # a bound on each walk; the demo has far fewer routes than this


@pytest.fixture
def demo(app):
    from app.database import begin_write
    from app.demo import seed
    from app.extensions import db

    with app.app_context():
        begin_write()
        seed()
        db.session.commit()


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 844}, timezone_id="Europe/London", locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _endpoint(app, path: str) -> str | None:
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method="GET")
    except HTTPException:
        return None
    return endpoint


def _links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a[href]:not([download]):not([target=_blank])", "els => els.map(e => e.href)"
    )
    found = []
    for href in hrefs:
        url = urljoin(page.url, href)
        parts = urlsplit(url)
        if not url.startswith(base) or parts.path.startswith(SKIP_PREFIXES):
            continue
        if parts.path.endswith(SKIP_SUFFIXES):
            continue
        found.append(url.split("#", 1)[0])
    return found


def _walk(app, page, base: str, start: str) -> list[str]:
    """Visit every route reachable by links from ``start`` once; check each page's width and
    accessibility at 390 px. Returns the routes visited; fails at the end naming every page
    that failed (not only the first)."""
    seen: set[str] = set()
    visited: list[str] = []
    problems: list[str] = []
    queue = [start]
    while queue and len(visited) < MAX_PAGES:
        url = queue.pop(0)
        endpoint = _endpoint(app, urlsplit(url).path)
        if endpoint is None or endpoint in seen or endpoint == "static":
            continue
        seen.add(endpoint)
        response = page.goto(url)
        if response is not None and response.status >= 500:
            problems.append(f"{url} answered {response.status}")
        if response is None or response.status >= 400 or not page.url.startswith(base):
            continue
        page.wait_for_load_state()
        path = urlsplit(url).path
        for check in (_fits, lambda p, path=path: assert_accessible(p, path)):
            try:
                check(page)
            except AssertionError as exc:
                problems.append(str(exc).split("\nassert ")[0])
        visited.append(endpoint)
        queue += _links(page, base)
    assert not problems, "\n".join(problems)
    return visited


@pytest.mark.parametrize("email", [login for login, _role in DEMO_LOGINS])
def test_no_signed_in_page_scrolls_sideways_on_a_phone(app, demo, live_server, phone, email):
    sign_in(phone, live_server, email, DEMO_PASSWORD)
    visited = _walk(app, phone, live_server, f"{live_server}/")  # home: the role's landing
    assert len(visited) >= 4, visited  # it walked, it did not stop at the first page
    print(email, len(visited), "pages:", ", ".join(visited))


def test_no_public_page_scrolls_sideways_on_a_phone(app, demo, live_server, phone):
    visited = _walk(app, phone, live_server, f"{live_server}/book")
    assert {"public.landing", "public.picker"} <= set(visited), visited


def test_team_day_scrolls_by_person_with_the_times_kept_in_view(app, demo, live_server, phone):
    """The team's day on a phone: the grid scrolls sideways inside its own box one person at a
    time (snap), the hour labels stay put while it does, and the page itself does not move."""
    sign_in(phone, live_server, DEMO_LOGINS[1][0], DEMO_PASSWORD)  # the booking manager
    phone.goto(f"{live_server}/calendar?view=day&scope=team")
    phone.wait_for_load_state()
    grid = phone.locator(".calendar-day .tg-scroll")
    times = phone.locator(".calendar-day .tg-times")
    assert grid.evaluate("el => getComputedStyle(el).scrollSnapType").startswith("x")
    assert grid.evaluate("el => el.scrollWidth > el.clientWidth")  # more people than fit
    before = times.bounding_box()["x"]
    person = grid.evaluate("el => el.querySelector('.tg-col').getBoundingClientRect().width")
    grid.evaluate(f"el => el.scrollBy({{left: {person}, behavior: 'instant'}})")
    assert grid.evaluate("el => el.scrollLeft") > 0
    assert times.bounding_box()["x"] == before  # sticky: the hours did not scroll away
    _fits(phone)
    assert_accessible(phone, "team day at 390 px")
