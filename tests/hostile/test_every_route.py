"""Hostile input on every route: no 5xx, and nothing written (DESIGN: every external input is
untrusted; bad input gets a clear 4xx and changes nothing).

For each rule and method of ``app.url_map``, Hypothesis takes the route's valid request
(``conftest.Template``) and corrupts it: path values, the fields the view reads and a few
extra query parameters get NUL bytes, lone surrogates (JSON), ids beyond PostgreSQL's integer,
years 1 and 9999, very long strings and values of the wrong JSON type. Everything else stays
valid (a real CSRF token, the owner signed in or a bearer token) so the hostile values reach
the views. Sent signed in as the owner and anonymously.

Whenever a hostile value sat somewhere the view reads (the path, or a field of the valid
request), or the request was a GET, the database must be exactly as before. A POST whose only
hostile values were extra, unread parameters is an ordinary valid request and may write.

Bounded and reproducible: ``EXAMPLES`` per route and sender, derandomised. Marked ``db`` so
CI runs it again on PostgreSQL (``TEST_DATABASE_URL``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.accounts.conftest import changed_tables, db_fingerprint
from tests.conftest import csrf_from, login
from tests.hostile.conftest import PARAM, Template

pytestmark = pytest.mark.db

EXAMPLES = 4  # per route, method and sender

# --- hostile values -------------------------------------------------------------------------

NUL = ["\x00", "a\x00b", "2030-01-07\x00"]
LONG = ["x" * 100_000, "9" * 6000]
HUGE_IDS = ["2147483648", "9223372036854775808", "9" * 40, "0", "-1", "٣", "²"]
EXTREME_DATES = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:59",
    "00010101",
    "9999-W52-7",
]
PATH_TEXT = [*NUL, "x" * 5000, *EXTREME_DATES, *HUGE_IDS, ".."]

JSON_SURROGATES = ["\ud800", "a\udfffb"]
JSON_HUGE = [2**31, 2**63, 10**30, -1, 0, 1e308, True, "1"]
JSON_WRONG = [[], {}, True, 1.5, [None], {"\ud800": 1}]
JSON_TEXT = [*NUL, *JSON_SURROGATES, "x" * 100_000, 2**31, [], {}, True]
JSON_DATES = [*EXTREME_DATES[2:5], *NUL, *JSON_SURROGATES, 10**30, [], {}]
JSON_BODIES = [[], "text", 123, {"\ud800": "x"}, {"\x00": None}]

JUNK_NAMES = [
    "day", "date", "from", "to", "tz", "page", "q", "status", "booking", "type", "agent",
    "start", "people", "ids", "seen", "relink", "search", "days", "week", "view", "scope",
    "next", "booking_type", "learner", "action", "a\x00b",
]  # fmt: skip
JUNK_VALUES = [*NUL, *LONG, *HUGE_IDS, *EXTREME_DATES]

TIME = re.compile(r"\d{1,2}:\d{2}(:\d{2})?")


def _kind(value: object) -> str:
    """What a valid form value is, so the hostile one is never a valid value of that kind."""
    if isinstance(value, list):
        return _kind(value[0]) if value else "id"
    text = str(value)
    if text.isdigit():
        return "id"
    if TIME.fullmatch(text):
        return "time"
    for parse in (datetime.fromisoformat, date.fromisoformat):
        try:
            parse(text)
            return "date"
        except ValueError:
            pass
    return "text"


FORM_HOSTILE = {
    "text": [*NUL, *LONG],
    "id": [*HUGE_IDS, *NUL, LONG[1], EXTREME_DATES[0]],
    "date": [*EXTREME_DATES, *NUL, LONG[0]],
    "time": [*NUL, *LONG, "99999999999"],
}


def _json_hostile(value: object) -> list:
    if isinstance(value, bool):
        return [2**31, "\x00", [], {"\ud800": 1}]
    if isinstance(value, int):
        return JSON_HUGE + JSON_WRONG[:2]
    if isinstance(value, list):
        return [[2**31], ["\x00"], ["\ud800"], "1", {}, [10**30] * 3, [[["\ud800"]]]]
    if isinstance(value, dict):
        return [{"mon": [["0001", "9999"]]}, {"mon": [[2**31, "\x00"]]}, [], "x", {"\ud800": 1}]
    if _kind(value) == "date":
        return JSON_DATES
    return JSON_TEXT


# --- one corrupted request ------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    query: list = field(default_factory=list)
    body: object = None  # form MultiDict items, or the JSON document
    is_json: bool = False
    htmx: bool = False
    reads_hostile: bool = False  # a hostile value where the view reads

    def describe(self) -> str:
        return (
            f"{self.method} {self.path[:160]} query={repr(self.query)[:200]} "
            f"body={repr(self.body)[:300]} htmx={self.htmx}"
        )


def _path(template: Template, values: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        value = values[name]
        return value if value is template.path_args[name] else quote(value, safe="")

    return PARAM.sub(fill, template.rule)


@st.composite
def corrupted(draw, templates: list[Template]) -> Sent:
    """A route's valid request with hostile values in some of its parts."""
    template = draw(st.sampled_from(templates))
    hostile = False
    values = {}
    for name, valid in template.path_args.items():
        if draw(st.booleans()):
            values[name] = draw(st.sampled_from(PATH_TEXT))
            hostile = True
        else:
            values[name] = valid
    query = []
    for name, valid in template.query:
        choice = draw(st.sampled_from(["keep", "hostile", "drop"]))
        if choice == "hostile":
            query.append((name, draw(st.sampled_from(FORM_HOSTILE[_kind(valid)]))))
            hostile = True
        elif choice == "keep":
            query.append((name, valid))
    for _ in range(draw(st.integers(0, 2))):
        query.append((draw(st.sampled_from(JUNK_NAMES)), draw(st.sampled_from(JUNK_VALUES))))
    if template.is_json:
        body, body_hostile = _json_body(draw, template)
    else:
        body, body_hostile = _form_body(draw, template)
    if not (hostile or body_hostile or query):
        query.append(("q", draw(st.sampled_from(JUNK_VALUES))))
    return Sent(
        template.method,
        _path(template, values),
        query,
        body,
        template.is_json,
        draw(st.booleans()),
        hostile or body_hostile,
    )


def _form_body(draw, template: Template) -> tuple[list, bool]:
    if template.method == "GET":
        return [], False
    items, hostile = [], False
    for name, valid in template.fields.items():
        choice = draw(st.sampled_from(["keep", "hostile", "hostile", "drop"]))
        if choice == "hostile":
            pool = FORM_HOSTILE[_kind(valid)]
            for value in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3)):
                items.append((name, value))
            hostile = True
        elif choice == "keep":
            items.extend((name, v) for v in (valid if isinstance(valid, list) else [valid]))
    if draw(st.booleans()):
        items.append((draw(st.sampled_from(JUNK_NAMES)), draw(st.sampled_from(JUNK_VALUES))))
    return items, hostile


def _json_body(draw, template: Template) -> tuple[object, bool]:
    if template.method == "GET":
        return None, False
    if not template.fields:  # the view reads no body: junk there is not read
        return draw(st.sampled_from([None, *JSON_BODIES])), False
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(JSON_BODIES)), True
    body, hostile = {}, False
    for name, valid in template.fields.items():
        choice = draw(st.sampled_from(["keep", "hostile", "hostile"]))
        if choice == "hostile":
            body[name] = draw(st.sampled_from(_json_hostile(valid)))
            hostile = True
        else:
            body[name] = valid
    return body, hostile


# --- sending --------------------------------------------------------------------------------


class Sender:
    """A client as the owner (signed in, bearer token for the API) or as nobody."""

    def __init__(self, sweep, as_owner: bool) -> None:
        self.sweep = sweep
        self.as_owner = as_owner
        self.client = sweep.app.test_client()
        self.sign_in()

    def sign_in(self) -> None:
        """Sign the owner in, or start an anonymous session, and read its CSRF token."""
        self.client = self.sweep.app.test_client()
        if self.as_owner:
            login(self.client, self.sweep.owner.email)
        self.token = csrf_from(self.client, "/bookings/new" if self.as_owner else "/login")
        self.session = self._session()

    def _session(self) -> tuple:
        with self.client.session_transaction() as session:
            return session.get("_user_id"), session.get("csrf_token")

    def restore(self) -> None:
        """Be the same sender again after a request that changed who is signed in (sign-out,
        a set-password link signs its person in) or the session's CSRF secret."""
        if self._session() != self.session:
            self.sign_in()

    def send(self, sent: Sent):
        headers = {"HX-Request": "true"} if sent.htmx else {}
        kwargs = {"method": sent.method, "query_string": MultiDict(sent.query)}
        if sent.is_json:
            if self.as_owner:
                headers["Authorization"] = f"Bearer {self.sweep.api_token}"
            if sent.body is not None:
                kwargs["json"] = sent.body
        elif sent.method != "GET":
            kwargs["data"] = MultiDict([*sent.body, ("csrf_token", self.token)])
        return self.client.open(sent.path, headers=headers, **kwargs)


def _check(sweep, sender: Sender, redis, sent: Sent, endpoint: str) -> str | None:
    """Send one request; the reason it failed, or None."""
    redis.flushdb()  # rate limits count every request; the sweep is not an abuser
    before = db_fingerprint(sweep.app)
    try:
        response = sender.send(sent)
    except Exception as exc:
        return f"{exc.__class__.__name__}: {str(exc)[:300]}"
    finally:
        sender.restore()
    if response.status_code >= 500 and not _readyz_unready(endpoint, response):
        return f"answered {response.status_code}"
    checked = sent.method == "GET" or sent.reads_hostile
    if checked and (written := changed_tables(before, db_fingerprint(sweep.app))):
        return f"answered {response.status_code} and wrote to {written}"
    return None


def _readyz_unready(endpoint: str, response) -> bool:
    """``/readyz``'s designed 503: no worker beats here (Redis is flushed before each request),
    and every other check passed. Any other 5xx from it is still a failure."""
    if endpoint != "health.readyz" or response.status_code != 503 or not response.is_json:
        return False
    failed = {name for name, result in response.get_json()["checks"].items() if not result["ok"]}
    return failed == {"worker"}


def _sweep(sweep, redis, as_owner: bool) -> list[str]:
    groups: dict[tuple[str, str], list[Template]] = defaultdict(list)
    for template in sweep.templates:
        groups[(template.endpoint, template.method)].append(template)
    sender = Sender(sweep, as_owner)
    failures = []
    for (endpoint, _method), templates in groups.items():
        found: list[str] = []
        _examples(sweep, sender, redis, endpoint, templates, found)()
        failures.extend(found[:2])
    return failures


def _examples(sweep, sender, redis, endpoint: str, templates: list[Template], found: list):
    """The Hypothesis run for one route and method. Failures are collected, not raised: every
    example runs (a bounded, predictable time) and Hypothesis never replays a request against
    a world that request has changed."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(sent=corrupted(templates))
    def run(sent: Sent) -> None:
        reason = _check(sweep, sender, redis, sent, endpoint)
        if reason is not None:
            found.append(f"{endpoint}: {sent.describe()} -> {reason}")

    return run


def _covered(sweep) -> None:
    """Every rule and method of the app has a template (a new route must get one)."""
    have = {(t.endpoint, t.method) for t in sweep.templates}
    want = {
        (rule.endpoint, method)
        for rule in sweep.app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert want <= have, f"routes without a hostile template: {sorted(want - have)}"


@pytest.mark.parametrize("as_owner", [True, False], ids=["owner", "anonymous"])
def test_hostile_input_never_fails_or_writes(sweep, redis, as_owner):
    """Every route and method, corrupted: no 5xx and, where the view read the hostile
    value, nothing written; as the owner and anonymously."""
    _covered(sweep)
    failures = _sweep(sweep, redis, as_owner)
    assert not failures, "\n".join(failures)
