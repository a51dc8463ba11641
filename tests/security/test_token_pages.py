"""Pages whose URL holds a token send no Referer onwards and are not cached (issue 08)."""

from __future__ import annotations

from app.extensions import db
from tests.conftest import csrf_from
from tests.security.conftest import Links

UNKNOWN = {
    "manage": "/book/manage/sbm_unknown",
    "confirm": "/book/confirm/sbc_unknown",
    "poll answer": "/polls/answer/sbp_unknown",
    "set password": "/set-password/sbpw_unknown",
    "feed": "/feeds/feed_unknown.ics",
}


def _private(response, name: str) -> None:
    assert response.headers.get("Referrer-Policy") == "no-referrer", name
    assert response.headers.get("Cache-Control") in {"no-store", "private, max-age=300"}, name


def test_every_token_page_sends_no_referrer(app, links: Links):
    """Manage (and its cancel and reschedule pages), confirm, poll answer, set-password and
    feed: the page itself and the answer to an unknown token."""
    client = app.test_client()
    for name, page in links.pages().items():
        response = client.get(page)
        assert response.status_code == 200, name
        _private(response, name)
    for name, page in UNKNOWN.items():
        response = client.get(page)
        assert response.status_code == 404, name
        _private(response, f"unknown {name}")


def test_answering_a_poll_sends_no_referrer(app, links: Links):
    """The poll answer page after a POST (saved, or refused as incomplete) too."""
    from app.polls.service import invitee_for_token

    client = app.test_client()
    url = f"/polls/answer/{links.poll}"
    with app.app_context():
        options = [o.id for o in invitee_for_token(links.poll).poll.options]
        db.session.rollback()
    incomplete = client.post(url, data={"csrf_token": csrf_from(client, url)})
    assert incomplete.status_code == 422
    _private(incomplete, "refused answer")
    answers = {f"option-{i}": "yes" for i in options}
    saved = client.post(url, data={"csrf_token": csrf_from(client, url), **answers})
    assert saved.status_code == 200
    _private(saved, "saved answer")


def test_ordinary_pages_keep_their_referrer_and_caching(app, client):
    """Only token pages are private: the sign-in page is left alone."""
    response = client.get("/login")
    assert "Referrer-Policy" not in response.headers
    assert "Cache-Control" not in response.headers
