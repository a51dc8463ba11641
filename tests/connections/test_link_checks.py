"""Linking from the screens checks the calendar in the background (checks.py): the request
only queues the check, the page polls its status region, and the outcome is the same one
linking used to give inside the request. Real feed servers, real Redis, the real RQ job."""

from __future__ import annotations

import json
import re
import time

import pytest
from rq import Queue
from sqlalchemy import select

from app.connections import checks
from app.connections.models import BusyBlock, Connection
from app.connections.sync import sync_connection
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import free_port, login
from tests.connections import test_cli as _cli
from tests.connections.ics_server import FeedServer
from tests.connections.test_cli import allow_private_urls, default_feed
from tests.connections.test_linking import page, post, run_link_checks

ics_server = _cli.ics_server
CHECK_RE = re.compile(r"check=([A-Za-z0-9_-]+)")


@pytest.fixture
def ada(factory):
    return factory.user("agent", email="ada@example.test", name="Ada Agent")


@pytest.fixture
def bo(factory):
    return factory.user("agent", email="bo@example.test", name="Bo Brown")


def start_ics_link(client, url: str) -> str:
    """Post the ICS form; returns the check id the answer redirects to."""
    response = post(client, "/me/calendars/ics", {"url": url})
    assert response.status_code == 303, response.get_data(as_text=True)
    return CHECK_RE.search(response.headers["Location"]).group(1)


def poll(client, check_id: str, shown: str | None = None):
    """The status region's poll, as htmx sends it (``HX-Trigger``: the poller's id)."""
    headers = {"HX-Request": "true"}
    if shown:
        headers["HX-Trigger"] = shown
    return client.get(f"/me/calendars?check={check_id}", headers=headers)


def ics_connections(app) -> list[Connection]:
    with app.app_context():
        rows = db.session.scalars(select(Connection).where(Connection.kind == "ics")).all()
        db.session.expunge_all()
        return rows


def test_the_request_only_queues_the_check_then_the_job_links(app, client, ada, ics_server):
    """Posting asks no calendar server and saves nothing; the page says the check is running;
    the worker's job then links the feed and the page says so."""
    allow_private_urls(app)
    feed = ics_server.publish("/rota.ics", default_feed())
    login(client, ada.email)
    before = db_state(app)

    check_id = start_ics_link(client, feed)

    assert ics_server.hits == []
    assert changed_tables(before, db_state(app)) == []
    html = page(client, f"/me/calendars?check={check_id}")
    assert "Checking “127.0.0.1” with its server…" in html
    assert 'id="link-check-waiting"' in html and 'hx-trigger="every 1s"' in html

    run_link_checks(app)

    assert ics_server.hits == ["/rota.ics"]
    html = page(client, f"/me/calendars?check={check_id}")
    assert "Linked “127.0.0.1” with 1 calendar. Its busy time is read within a minute." in html
    assert "Team rota" in html and "link-check-waiting" not in html
    [connection] = ics_connections(app)
    assert connection.user_id == ada.id


def test_the_status_region_answers_204_until_there_is_news(app, client, ada, ics_server):
    """While the check runs and the page already says so, the poll gets 204 (htmx swaps
    nothing); once linked, the new state with the refreshed list swapped in out of band."""
    allow_private_urls(app)
    login(client, ada.email)
    check_id = start_ics_link(client, ics_server.publish("/rota.ics", default_feed()))

    waiting = poll(client, check_id, shown="link-check-waiting")
    assert waiting.status_code == 204 and waiting.get_data() == b""
    assert "HX-Request" in waiting.headers["Vary"]
    fresh = poll(client, check_id)  # a page that shows something else gets the state
    assert fresh.status_code == 200 and 'id="link-check-waiting"' in fresh.get_data(as_text=True)
    assert "<html" not in fresh.get_data(as_text=True)

    run_link_checks(app)

    done = poll(client, check_id, shown="link-check-waiting")
    fragment = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "Linked “127.0.0.1” with 1 calendar." in fragment
    assert 'id="my-calendars"' in fragment and 'hx-swap-oob="true"' in fragment
    assert "Team rota" in fragment
    assert "hx-trigger" not in fragment.split('id="my-calendars"')[0]  # polling stops


def test_a_check_that_takes_long_says_so_once(app, client, ada, ics_server, monkeypatch):
    allow_private_urls(app)
    login(client, ada.email)
    check_id = start_ics_link(client, ics_server.publish("/rota.ics", default_feed()))
    later = time.time() + checks.SLOW_AFTER_SECONDS + 1
    monkeypatch.setattr(checks.time, "time", lambda: later)

    slow = poll(client, check_id, shown="link-check-waiting")

    assert slow.status_code == 200
    assert "taking longer than usual" in slow.get_data(as_text=True)
    assert poll(client, check_id, shown="link-check-slow").status_code == 204


def test_a_failed_check_explains_and_saves_nothing(app, client, ada, ics_server):
    allow_private_urls(app)
    ics_server.publish("/page.html", "<html><body>Welcome</body></html>", "text/html")
    login(client, ada.email)
    before = db_state(app)
    check_id = start_ics_link(client, ics_server.url("/page.html"))

    run_link_checks(app)

    fragment = poll(client, check_id, shown="link-check-waiting").get_data(as_text=True)
    assert "That address did not return an iCalendar feed." in fragment
    assert 'id="my-calendars"' not in fragment
    assert changed_tables(before, db_state(app)) == []


def test_a_check_is_shown_only_to_the_person_who_started_it(app, client, ada, bo, ics_server):
    allow_private_urls(app)
    login(client, ada.email)
    check_id = start_ics_link(client, ics_server.publish("/ada.ics", default_feed()))
    run_link_checks(app)

    other = app.test_client()
    login(other, bo.email)
    for html in [
        page(other, f"/me/calendars?check={check_id}"),
        poll(other, check_id).get_data(as_text=True),
    ]:
        assert "That calendar check is not known" in html
        assert "Linked" not in html and "Team rota" not in html
    for odd in ["x", "../../etc", "a" * 500, "é" * 32, check_id[:-1] + "?"]:
        response = other.get("/me/calendars", query_string={"check": odd})
        assert response.status_code == 200
        assert "That calendar check is not known" in response.get_data(as_text=True)


def test_no_secret_reaches_the_job_or_stays_in_redis(app, client, ada, ics_server, redis):
    """The job gets the check's id only; Redis holds the feed address sealed, and not at
    all once the job has run."""
    allow_private_urls(app)
    login(client, ada.email)
    feed = ics_server.publish("/rota.ics", default_feed()) + "?key=feedkey-s3cr3t"
    check_id = start_ics_link(client, feed)

    [job] = Queue(checks.QUEUE, connection=redis).jobs
    assert job.args == (check_id,) and job.kwargs == {}
    stored = redis.get(f"slotbook:link-check:{check_id}").decode()
    assert "feedkey-s3cr3t" not in stored and json.loads(stored)["secret_sealed"]

    run_link_checks(app)

    stored = json.loads(redis.get(f"slotbook:link-check:{check_id}"))
    assert stored["state"] == "linked" and stored["secret_sealed"] is None
    assert "feedkey-s3cr3t" not in json.dumps(stored)
    assert ics_server.hits == ["/rota.ics?key=feedkey-s3cr3t"]


def test_linking_while_background_work_is_down_says_so(app, client, ada, ics_server):
    allow_private_urls(app)
    login(client, ada.email)
    token_page = page(client)
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    before = db_state(app)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', token_page).group(1)

    response = post(client, "/me/calendars/ics", {"url": ics_server.url("/x.ics")}, token=token)

    assert response.status_code == 400
    assert "cannot check calendars at the moment" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert ics_server.hits == []


def test_a_feed_on_an_ipv6_address_links_and_syncs(app, client, ada):
    """http://[::1]:port/… links where loopback is allowed (the deployment's switch), keeps
    its brackets in the stored address, and the sync reads it."""
    app.config["SLOTBOOK_ALLOW_PRIVATE_URLS"] = True
    with FeedServer(host="::1") as server6:
        server6.feed("/rota.ics", default_feed())
        login(client, ada.email)
        check_id = start_ics_link(client, server6.url("/rota.ics"))
        run_link_checks(app)

        html = page(client, f"/me/calendars?check={check_id}")
        assert "Linked “::1” with 1 calendar." in html
        [connection] = ics_connections(app)
        assert connection.url == f"http://[::1]:{server6.port}/rota.ics"
        with app.app_context():
            report = sync_connection(connection.id)
            blocks = db.session.scalars(select(BusyBlock)).all()
        assert report.error is None and len(blocks) == 2
        assert len(server6.hits_to("/rota.ics")) == 2


def test_a_feed_that_drips_fails_its_check_at_the_deadline(app, client, ada):
    """A byte every 0.1 s: the check gives up at the download deadline with a clear
    message, and nothing is linked."""
    allow_private_urls(app)
    app.config["SLOTBOOK_CALENDAR_DOWNLOAD_TIMEOUT"] = 1.5
    with FeedServer() as slow:
        slow.trickle("/slow.ics", interval=0.1, count=600)
        login(client, ada.email)
        check_id = start_ics_link(client, slow.url("/slow.ics"))
        started = time.monotonic()
        run_link_checks(app)
        took = time.monotonic() - started

    assert took < 10
    fragment = poll(client, check_id).get_data(as_text=True)
    assert "took too long" in fragment
    assert ics_connections(app) == []
