"""Outbound HTTP rules (K2 address checks, K6 Retry-After/backoff) against a real local server."""

from __future__ import annotations

import base64
import socket
from datetime import timedelta
from email.utils import format_datetime

import pytest
import requests

from app.connections.http import check_url, fetch, new_session, retry_after_seconds
from app.connections.providers.base import (
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
    UnsafeURL,
)
from app.database import utcnow
from tests.connections.ics_server import FeedServer, Reply

LOCAL = ProviderSettings(allow_private_urls=True, timeout=5)


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def other_server():
    with FeedServer() as running:
        yield running


class Waits(list):
    """Stands in for ``time.sleep`` through fetch's ``sleep`` parameter: records, no waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- Retry-After and backoff ---------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_then_succeeds(server):
    """The second request arrives no sooner than Retry-After said."""
    server.replies("/busy", Reply(429, b"", {"Retry-After": "1"}), Reply(200, b"done"))

    response = fetch(new_session(), "GET", server.url("/busy"), LOCAL)

    assert response.status_code == 200
    assert response.text == "done"
    first, second = server.hits_to("/busy")
    assert second.at - first.at >= 1.0


def test_retry_after_longer_than_the_cap_is_rate_limited_at_once(server):
    server.replies("/busy", Reply(429, b"", {"Retry-After": "120"}), Reply(200, b"never"))
    settings = ProviderSettings(allow_private_urls=True, max_retry_wait=30)

    with pytest.raises(RateLimited) as caught:
        fetch(new_session(), "GET", server.url("/busy"), settings, sleep=Waits())

    assert caught.value.retry_after == 120
    assert len(server.hits_to("/busy")) == 1


def test_retry_after_as_an_http_date_is_understood(server):
    when = utcnow() + timedelta(seconds=120)
    assert 100 < retry_after_seconds(format_datetime(when, usegmt=True), default=0) <= 120
    server.replies("/busy", Reply(503, b"", {"Retry-After": format_datetime(when, usegmt=True)}))

    with pytest.raises(RateLimited) as caught:
        fetch(new_session(), "GET", server.url("/busy"), LOCAL, sleep=Waits())

    assert 100 < caught.value.retry_after <= 120


def test_unreadable_retry_after_falls_back_to_the_default():
    assert retry_after_seconds("soon, probably", default=7.0) == 7.0
    assert retry_after_seconds(None, default=3.0) == 3.0
    assert retry_after_seconds("0", default=3.0) == 0.0


def test_503_that_never_clears_becomes_rate_limited_after_the_attempts(server):
    server.replies("/down", Reply(503, b"", {"Retry-After": "0"}))
    waits = Waits()

    with pytest.raises(RateLimited) as caught:
        fetch(new_session(), "GET", server.url("/down"), LOCAL, attempts=3, sleep=waits)

    assert len(server.hits_to("/down")) == 3
    assert waits == [0.0, 0.0]
    assert caught.value.retry_after > 0


def test_500s_back_off_then_become_a_temporary_failure(server):
    server.replies("/broken", Reply(500, b"oops"))
    waits = Waits()

    with pytest.raises(TemporaryFailure, match="internal error"):
        fetch(new_session(), "GET", server.url("/broken"), LOCAL, attempts=4, sleep=waits)

    assert len(server.hits_to("/broken")) == 4
    # Exponential backoff with jitter: 1 s, 2 s, 4 s, each spread by ±50 %.
    assert len(waits) == 3
    bounds = [(0.5, 1.5), (1, 3), (2, 6)]
    assert all(low <= w <= high for w, (low, high) in zip(waits, bounds, strict=True))


def test_a_500_asking_for_an_hour_does_not_stall_the_worker(server):
    """Fixed bug: Retry-After on a 500 used to be slept in full (here an hour per attempt)."""
    server.replies("/broken", Reply(500, b"", {"Retry-After": "3600"}))
    waits = Waits()

    with pytest.raises(TemporaryFailure):
        fetch(new_session(), "GET", server.url("/broken"), LOCAL, attempts=3, sleep=waits)

    assert len(waits) == 2
    assert max(waits) < LOCAL.max_retry_wait


def test_a_success_after_a_502_is_returned(server):
    server.replies("/flaky", Reply(502), Reply(200, b"fine"))

    response = fetch(new_session(), "GET", server.url("/flaky"), LOCAL, sleep=Waits())

    assert response.text == "fine"
    assert len(server.hits_to("/flaky")) == 2


def test_4xx_is_handed_back_for_the_caller_to_interpret(server):
    server.replies("/gone", Reply(410, b"gone"))

    response = fetch(new_session(), "GET", server.url("/gone"), LOCAL, sleep=Waits())

    assert response.status_code == 410
    assert len(server.hits_to("/gone")) == 1


def test_connection_refused_is_a_temporary_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nobody listens
    waits = Waits()

    with pytest.raises(TemporaryFailure, match=r"Could not reach 127\.0\.0\.1"):
        fetch(new_session(), "GET", f"http://127.0.0.1:{port}/", LOCAL, attempts=2, sleep=waits)

    assert len(waits) == 1


def test_an_unresolvable_host_is_a_temporary_failure():
    """``.invalid`` never resolves (RFC 2606): the name check fails before any request."""
    with pytest.raises(TemporaryFailure, match=r"calendar\.invalid"):
        check_url("https://calendar.invalid/feed.ics", allow_private=False)


# --- address checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.8.9.10:8080/cal",
        "https://10.0.0.1/feed.ics",
        "https://192.168.1.20/",
        "https://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://localhost/",
        "http://LOCALHOST:5232/",
    ],
)
def test_private_and_local_addresses_are_refused_unless_allowed(url):
    with pytest.raises(UnsafeURL, match="local or private address"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)  # an administrator may allow them


def test_a_public_address_is_accepted():
    check_url("https://93.184.215.14/calendar.ics", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[::127.0.0.1]/",  # IPv4-compatible
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[::ffff:10.1.2.3]/",
    ],
)
def test_ipv4_wrapped_in_ipv6_is_checked_too(url):
    with pytest.raises(UnsafeURL, match="local or private address"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::5db8:d70e]/",  # NAT64 of the public 93.184.215.14
        "https://[2002:5db8:d70e::1]/",  # 6to4 of the same
        "https://[2606:4700::6810:84e5]/",  # plain global IPv6
    ],
)
def test_ipv6_wrapping_a_public_ipv4_is_accepted(url):
    check_url(url, allow_private=False)


def test_the_refusal_does_not_name_the_resolved_address():
    """Host "localhost" is 127.0.0.1 or ::1; the message names only what the user typed."""
    with pytest.raises(UnsafeURL) as refused:
        check_url("http://localhost:5232/", allow_private=False)
    assert "127.0.0.1" not in str(refused.value) and "::1" not in str(refused.value)
    assert "localhost" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/feed.ics",
        "gopher://example.com/",
        "javascript:alert(1)",
        "webcal://example.com/feed.ics",  # the ICS provider turns this into https first
        "https:///no-host",
        "not a url",
    ],
)
def test_non_http_addresses_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(UnsafeURL, match="https://"):
        check_url(url, allow_private=True)


def test_an_invalid_port_is_refused_cleanly():
    """Fixed bug: ``urlsplit(...).port`` raised a bare ValueError out of check_url."""
    with pytest.raises(UnsafeURL, match="not a valid web address"):
        check_url("https://example.com:99999/feed.ics", allow_private=False)
    with pytest.raises(UnsafeURL):
        check_url("http://[::1/", allow_private=True)


def test_named_hosts_may_be_private_without_opening_the_whole_network():
    check_url("http://localhost:5232/", allow_private=False, allowed_hosts={"localhost"})
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.1:5232/", allow_private=False, allowed_hosts={"localhost"})


def test_a_private_address_is_refused_before_any_request_is_made(server):
    server.replies("/feed", Reply(200, b"secret admin page"))

    with pytest.raises(UnsafeURL):
        fetch(new_session(), "GET", server.url("/feed"), ProviderSettings(), sleep=Waits())

    assert server.hits == []


# --- redirects -----------------------------------------------------------------------------


def test_a_redirect_to_a_forbidden_address_is_refused(server, other_server):
    """The first hop (localhost, named as allowed) is fine; its redirect to 127.0.0.1 is not
    followed: the target is checked before it is requested."""
    server.redirect("/feed", other_server.url("/internal"))
    other_server.replies("/internal", Reply(200, b"internal data"))
    settings = ProviderSettings(allow_private_urls=False, private_hosts=frozenset({"localhost"}))

    with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
        fetch(new_session(), "GET", server.url("/feed", host="localhost"), settings)

    assert len(server.hits_to("/feed")) == 1
    assert other_server.hits == []


def test_a_redirect_to_another_scheme_is_refused(server):
    server.redirect("/feed", "file:///etc/passwd")

    with pytest.raises(UnsafeURL):
        fetch(new_session(), "GET", server.url("/feed"), LOCAL)


def test_a_redirect_chain_is_followed_hop_by_hop(server, other_server):
    server.redirect("/one", "/two", status=301)
    server.redirect("/two", other_server.url("/three"), status=307)
    other_server.replies("/three", Reply(200, b"arrived"))

    response = fetch(new_session(), "GET", server.url("/one"), LOCAL)

    assert response.text == "arrived"
    assert [hit.path for hit in server.hits] == ["/one", "/two"]
    assert [hit.path for hit in other_server.hits] == ["/three"]


def test_too_many_redirects_is_a_temporary_failure(server):
    server.redirect("/loop", "/loop")

    with pytest.raises(TemporaryFailure, match="redirected too many times"):
        fetch(new_session(), "GET", server.url("/loop"), LOCAL, attempts=1)

    assert len(server.hits_to("/loop")) == 6


def test_credentials_are_not_sent_to_another_origin(server, other_server):
    """Fixed bug: headers and ``auth`` were re-sent to every redirect target."""
    server.redirect("/feed", "/moved")
    server.redirect("/moved", other_server.url("/elsewhere"))
    other_server.replies("/elsewhere", Reply(200, b"ok"))
    session = new_session()
    session.headers["Authorization"] = "Bearer session-token"

    fetch(session, "GET", server.url("/feed"), LOCAL, auth=("anna", "app-password"))
    fetch(
        new_session(),
        "GET",
        server.url("/feed"),
        LOCAL,
        headers={"Authorization": "Bearer call-token"},
    )

    basic = "Basic " + base64.b64encode(b"anna:app-password").decode()
    assert [hit.headers.get("authorization") for hit in server.hits] == [
        basic,
        basic,  # same origin: still the intended server
        "Bearer call-token",
        "Bearer call-token",
    ]
    assert [hit.headers.get("authorization") for hit in other_server.hits] == [None, None]


def test_303_after_post_continues_as_get_without_the_body(server):
    server.replies("/submit", Reply(303, b"", {"Location": "/result"}))
    server.replies("/result", Reply(200, b"result"))

    response = fetch(new_session(), "POST", server.url("/submit"), LOCAL, data=b"payload")

    assert response.text == "result"
    submit, result = server.hits
    assert (submit.method, submit.body) == ("POST", b"payload")
    assert (result.method, result.body) == ("GET", b"")


def test_a_streamed_response_can_be_read_after_retries(server):
    server.replies("/flaky", Reply(503, b"", {"Retry-After": "0"}), Reply(200, b"x" * 100_000))

    response = fetch(new_session(), "GET", server.url("/flaky"), LOCAL, stream=True)

    assert b"".join(response.iter_content(4096)) == b"x" * 100_000
    assert isinstance(response, requests.Response)
