"""Outbound HTTP that cannot be rebound and has one deadline (issue [08], acceptance 5).

DNS is the one thing replaced: ``http.resolve`` becomes a scripted resolver (a rebinding DNS
server in a few lines). Every connection is real, to real servers on 127.0.0.1 and ::1, so
what is proven is where sockets actually go and how long they actually wait.
"""

from __future__ import annotations

import logging
import ssl
import time

import pytest

from app.connections import http
from app.connections.http import fetch, new_session
from app.connections.models import Connection, ConnectionKind
from app.connections.providers.base import (
    ProviderSettings,
    RateLimited,
    TemporaryFailure,
    UnsafeURL,
)
from app.connections.providers.ics import IcsProvider
from tests.connections.ics_server import FeedServer, Hit, Reply
from tests.fakes.graph_server import make_tls_files

PUBLIC = "93.184.215.14"  # a global address; nothing here may connect to loopback in its name
LOCAL = ProviderSettings(allow_private_urls=True, timeout=5, http_attempts=1)


class ScriptedDNS:
    """Answers each look-up of a name with the next answer in its script (the last repeats),
    and remembers every look-up."""

    def __init__(self, **scripts: list[list[str]]) -> None:
        self.scripts = {name.replace("_", "."): list(answers) for name, answers in scripts.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        script = self.scripts.get(host)
        if script is None:
            raise OSError(f"no such name {host}")
        return script.pop(0) if len(script) > 1 else script[0]


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def connects(caplog):
    """The addresses sockets were opened to, from the module's debug log."""
    caplog.set_level(logging.DEBUG, logger="app.connections.http")

    def addresses() -> list[str]:
        return [r.args[1] for r in caplog.records if r.getMessage().startswith("connecting to")]

    return addresses


# --- DNS rebinding -----------------------------------------------------------------------------


def test_a_name_that_rebinds_to_loopback_is_connected_where_it_was_checked(
    server, monkeypatch, connects
):
    """Public on the first look-up, 127.0.0.1 on any later one: the name is looked up once,
    the socket goes to the public address that was checked, and the loopback server sees
    nothing (the old code checked one answer and connected to the next)."""
    server.replies("/admin", Reply(200, b"loopback-only data"))
    dns = ScriptedDNS(rebind_test=[[PUBLIC], ["127.0.0.1"]])
    monkeypatch.setattr(http, "resolve", dns)
    settings = ProviderSettings(timeout=2, http_attempts=1)

    with pytest.raises(TemporaryFailure):  # nothing answers for the public address here
        fetch(new_session(), "GET", f"http://rebind.test:{server.port}/admin", settings)

    assert server.hits == []
    assert dns.asked == ["rebind.test"]
    assert connects() == [PUBLIC]


def test_a_retry_looks_the_name_up_again_and_checks_that_answer_too(server, monkeypatch, connects):
    """Each new connection is checked as it is made: the retry gets the loopback answer and
    is refused before a socket is opened."""
    server.replies("/admin", Reply(200, b"loopback-only data"))
    dns = ScriptedDNS(rebind_test=[[PUBLIC], ["127.0.0.1"]])
    monkeypatch.setattr(http, "resolve", dns)
    settings = ProviderSettings(timeout=2, http_attempts=2)

    with pytest.raises(UnsafeURL, match=r"rebind\.test is a local or private address"):
        fetch(new_session(), "GET", f"http://rebind.test:{server.port}/admin", settings)

    assert server.hits == []
    assert connects() == [PUBLIC]


@pytest.mark.parametrize(
    "answer", [["127.0.0.1"], [PUBLIC, "127.0.0.1"], ["127.0.0.1", PUBLIC], ["::ffff:127.0.0.1"]]
)
def test_a_name_with_any_loopback_answer_is_refused_before_connecting(
    server, monkeypatch, connects, answer
):
    """Every address of the name is checked, not just the first."""
    server.replies("/admin", Reply(200, b"loopback-only data"))
    monkeypatch.setattr(http, "resolve", ScriptedDNS(calendar_test=[answer]))

    with pytest.raises(UnsafeURL):
        fetch(new_session(), "GET", f"http://calendar.test:{server.port}/admin", ProviderSettings())

    assert server.hits == [] and connects() == []


def test_a_redirect_to_a_name_that_resolves_to_loopback_is_refused(monkeypatch, connects):
    """Every hop gets the same check: localhost is allowed by name, the name it redirects
    to is not, although both lead to 127.0.0.1."""
    with FeedServer() as first, FeedServer() as second:
        second.replies("/internal", Reply(200, b"internal data"))
        first.redirect("/feed", f"http://sneaky.test:{second.port}/internal")
        monkeypatch.setattr(
            http, "resolve", ScriptedDNS(localhost=[["127.0.0.1"]], sneaky_test=[["127.0.0.1"]])
        )
        settings = ProviderSettings(private_hosts=frozenset({"localhost"}), http_attempts=1)

        with pytest.raises(UnsafeURL, match=r"sneaky\.test"):
            fetch(new_session(), "GET", first.url("/feed", host="localhost"), settings)

        assert len(first.hits_to("/feed")) == 1
        assert second.hits == []
        assert connects() == ["127.0.0.1"]


def test_the_connection_goes_to_the_resolved_address_with_the_name_as_host(
    server, monkeypatch, connects
):
    """Where private addresses are allowed, a name still connects to what it resolved to,
    once, and the server sees the name in the Host header."""
    server.routes["/feed"] = lambda hit: Reply(200, hit.headers["host"].encode())
    dns = ScriptedDNS(calendar_lan=[["127.0.0.1"]])
    monkeypatch.setattr(http, "resolve", dns)

    response = fetch(new_session(), "GET", f"http://calendar.lan:{server.port}/feed", LOCAL)

    assert response.text == f"calendar.lan:{server.port}"
    assert dns.asked == ["calendar.lan"] and connects() == ["127.0.0.1"]


def test_a_name_whose_first_address_is_down_falls_back_to_the_next(server, monkeypatch, connects):
    """Checked addresses are tried in order, like the system would (::1 refuses here)."""
    server.replies("/feed", Reply(200, b"ok"))
    monkeypatch.setattr(http, "resolve", ScriptedDNS(dual_test=[["::1", "127.0.0.1"]]))

    response = fetch(new_session(), "GET", f"http://dual.test:{server.port}/feed", LOCAL)

    assert response.text == "ok"
    assert connects() == ["::1", "127.0.0.1"]


def test_a_pinned_connection_without_rules_refuses_to_connect(server):
    """Fail closed: only the guarded adapter, which brings the rules, opens connections."""
    connection = http._PinnedHTTPConnection("127.0.0.1", server.port)

    with pytest.raises(UnsafeURL):
        connection.connect()

    assert server.hits == []


# --- TLS keeps the name --------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    files = make_tls_files(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_path, files.key_path)
    with FeedServer(tls=context) as running:
        running.replies("/feed", Reply(200, b"over tls"))
        yield running, files.ca_path


def test_tls_is_verified_against_the_name_not_the_pinned_address(tls_server, monkeypatch, connects):
    """The certificate names localhost and 127.0.0.1. "localhost" pinned to 127.0.0.1 is
    accepted; another name pinned to the same address is not, although the address is in
    the certificate: SNI and verification use the name."""
    server, ca = tls_server
    monkeypatch.setattr(
        http, "resolve", ScriptedDNS(localhost=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
    )
    session = new_session()

    response = fetch(session, "GET", server.url("/feed", host="localhost"), LOCAL, verify=ca)
    assert response.text == "over tls"

    with pytest.raises(TemporaryFailure):
        fetch(session, "GET", server.url("/feed", host="other.test"), LOCAL, verify=ca)
    assert len(server.hits_to("/feed")) == 1
    assert connects() == ["127.0.0.1", "127.0.0.1"]


# --- IPv6 literals -----------------------------------------------------------------------------


def test_an_ipv6_literal_is_fetched_where_loopback_is_allowed(connects):
    with FeedServer(host="::1") as server6:
        server6.replies("/feed", Reply(200, b"over ipv6"))

        response = fetch(new_session(), "GET", server6.url("/feed"), LOCAL)

    assert server6.url("/feed").startswith("http://[::1]:")
    assert response.text == "over ipv6"
    assert connects() == ["::1"]


def test_an_ipv6_loopback_literal_is_refused_by_default(connects):
    with FeedServer(host="::1") as server6:
        server6.replies("/feed", Reply(200, b"over ipv6"))

        with pytest.raises(UnsafeURL, match="::1 is a local or private address"):
            fetch(new_session(), "GET", server6.url("/feed"), ProviderSettings())

        assert server6.hits == [] and connects() == []


def test_a_public_ipv6_literal_passes_the_check():
    assert http.check_url("https://[2606:4700::6810:84e5]:8443/cal.ics", False) == [
        "2606:4700::6810:84e5"
    ]
    assert http.parse_target("https://[2606:4700::6810:84e5]/") == (
        "https",
        "2606:4700::6810:84e5",
        443,
    )


# --- one deadline --------------------------------------------------------------------------------


def _feed_provider(url: str, settings: ProviderSettings) -> IcsProvider:
    connection = Connection(kind=ConnectionKind.ICS, user_id=1, url=url, label="feed")
    return IcsProvider(connection, None, settings)


def test_a_feed_dripping_bytes_is_cut_off_at_its_deadline(server):
    """A byte every 0.1 s never trips a 5 s read timeout; the download's deadline ends it."""
    server.trickle("/slow.ics", interval=0.1, count=300)
    settings = ProviderSettings(allow_private_urls=True, timeout=5, download_timeout=1.5)
    started = time.monotonic()

    with pytest.raises(TemporaryFailure, match="took too long"):
        _feed_provider(server.url("/slow.ics"), settings).list_calendars()

    assert time.monotonic() - started < 3.5


def test_a_server_that_never_answers_is_given_up_at_the_deadline(server):
    server.silence("/feed")
    settings = ProviderSettings(allow_private_urls=True, timeout=1.5, http_attempts=1)
    started = time.monotonic()

    with pytest.raises(TemporaryFailure, match="took too long"):
        fetch(new_session(), "GET", server.url("/feed"), settings)

    assert time.monotonic() - started < 3.5


def test_redirect_hops_share_one_deadline(server):
    """Three hops of 0.7 s each: every hop is well inside the timeout, all three are not."""

    def slow_redirect(to: str):
        def answer(hit: Hit) -> Reply:
            time.sleep(0.7)
            return Reply(302, b"", {"Location": to})

        return answer

    server.routes["/one"] = slow_redirect("/two")
    server.routes["/two"] = slow_redirect("/three")
    server.routes["/three"] = slow_redirect("/feed")
    server.replies("/feed", Reply(200, b"too late"))
    settings = ProviderSettings(allow_private_urls=True, timeout=1.5, http_attempts=1)
    started = time.monotonic()

    with pytest.raises(TemporaryFailure, match="took too long"):
        fetch(new_session(), "GET", server.url("/one"), settings)

    assert time.monotonic() - started < 3.0
    assert server.hits_to("/feed") == []


def test_retries_that_would_outlast_an_enclosing_deadline_are_not_waited_for(server):
    server.replies("/busy", Reply(503, b"", {"Retry-After": "5"}), Reply(200, b"later"))
    waits: list[float] = []

    with http.deadline(2), pytest.raises(RateLimited) as caught:
        fetch(new_session(), "GET", server.url("/busy"), LOCAL, attempts=3, sleep=waits.append)

    assert waits == [] and caught.value.retry_after == 5
    assert len(server.hits_to("/busy")) == 1
