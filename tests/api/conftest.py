"""A small world for the API: people with tokens and office hours, types, a winter Monday."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select

from app.accounts.models import Group, User
from app.bookings.models import AvailabilitySource
from app.database import begin_write
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state

LONDON = ZoneInfo("Europe/London")
OFFICE = {day: [(time(9), time(17))] for day in range(5)}  # Monday to Friday, London


def _monday_in(months: tuple[int, ...]) -> date:
    day = datetime.now(UTC).date() + timedelta(days=3)
    while day.weekday() != 0 or day.month not in months:
        day += timedelta(days=1)
    return day


def winter_monday() -> date:
    """The first Monday at least three days ahead in December, January or February: London is
    on GMT and New York on EST (-05:00) then, and it is always within a year."""
    return _monday_in((12, 1, 2))


def summer_monday() -> date:
    """The same in June, July or August: London on BST (+01:00), New York on EDT (-04:00)."""
    return _monday_in((6, 7, 8))


def london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def iso(value: datetime) -> str:
    return value.isoformat()


# --- every response the API tests receive is checked against the served document -----------

PREFIX = "/api/v1"
DOCUMENT_URI = "urn:slotbook:openapi"


class UndocumentedResponse(AssertionError):
    """A response whose status or body the OpenAPI document does not describe."""


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _path_patterns(paths: tuple[str, ...]) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(p)) + "$"), p) for p in paths]


def response_schema_pointer(document: dict, method: str, path: str, status: int) -> str:
    """The JSON pointer (in the document) of the schema a response must match: the operation's
    answer for this status, or the Error schema for an unknown path or method (404, 405)."""
    templates = [
        t for pattern, t in _path_patterns(tuple(document["paths"])) if pattern.match(path)
    ]
    item = document["paths"][templates[0]] if templates else {}
    if method.lower() not in item:
        if status not in (404, 405):
            raise UndocumentedResponse(f"{method} {path}: no such operation, yet {status}")
        return "/components/schemas/Error"
    responses = item[method.lower()]["responses"]
    if str(status) not in responses:
        raise UndocumentedResponse(
            f"{method} {templates[0]} answered {status}; documented: {sorted(responses)}"
        )
    pointer = "/" + _pointer("paths", templates[0], method.lower(), "responses", str(status))
    if "$ref" in responses[str(status)]:
        pointer = responses[str(status)]["$ref"].removeprefix("#")
    return pointer + "/" + _pointer("content", "application/json", "schema")


def check_documented(document: dict, method: str, path: str, response) -> None:
    """Raise unless ``response`` (to ``method path`` under /api/v1) is JSON and valid against
    the document's schema for its path, method and status."""
    pointer = response_schema_pointer(document, method, path[len(PREFIX) :], response.status_code)
    if not response.is_json:
        raise UndocumentedResponse(f"{method} {path} answered {response.mimetype}, not JSON")
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    validator = Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#{pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(response.get_json()), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        raise UndocumentedResponse(
            f"{method} {path} ({response.status_code}) does not match {pointer}: "
            f"{first.message} at /{where}"
        )


class DocumentedClient(FlaskClient):
    """A test client that checks every /api/v1 response against the document the app serves
    (fetched once per app), so no test can pass on an answer the document does not describe."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.path.startswith(PREFIX + "/"):
            check_documented(self._document(), request.method, request.path, response)
        return response

    def _document(self) -> dict:
        cached = self.application.extensions.get("tests.openapi_document")
        if cached is None:
            raw = FlaskClient(self.application, self.application.response_class).get(
                PREFIX + "/openapi.json"
            )
            assert raw.status_code == 200, raw.status_code
            cached = self.application.extensions["tests.openapi_document"] = raw.get_json()
        return cached


@pytest.fixture(autouse=True)
def documented_responses(app):
    """Every client made from the app in API tests (``client``, ``app.test_client()``) checks
    its API responses against the served OpenAPI document."""
    app.test_client_class = DocumentedClient
    yield
    app.test_client_class = None


def group_id(app, slug: str) -> int:
    with app.app_context():
        return db.session.scalars(select(Group.id).where(Group.slug == slug)).one()


def snapshot(app) -> dict:
    """Every table except API tokens (whose ``last_used_at`` moves on each authenticated
    call), plus the token count: equal snapshots mean a request wrote nothing."""
    state = db_state(app)
    tokens = state.pop("api_tokens")
    state["api_tokens (count)"] = [(len(tokens),)]
    return state


def unchanged(app, before: dict) -> bool:
    return changed_tables(before, snapshot(app)) == []


class Api:
    """The test client speaking JSON with a bearer token."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict | None) -> dict:
        base = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**base, **(headers or {})}

    def get(self, url: str, headers: dict | None = None, **kwargs):
        return self.client.get(url, headers=self._headers(headers), **kwargs)

    def post(self, url: str, json=None, headers: dict | None = None, **kwargs):
        return self.client.post(url, json=json, headers=self._headers(headers), **kwargs)

    def patch(self, url: str, json=None, headers: dict | None = None, **kwargs):
        return self.client.patch(url, json=json, headers=self._headers(headers), **kwargs)

    def put(self, url: str, json=None, headers: dict | None = None, **kwargs):
        return self.client.put(url, json=json, headers=self._headers(headers), **kwargs)


def assert_error(response, status: int, code: str) -> dict:
    """A JSON error with this status and code (and a message for people)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) == {"error", "message"}
    return body


@dataclass
class World:
    app: object
    factory: object
    client: object
    manager: User  # booking-manager: may assign, approve, see everything
    agent: User  # office hours, in the "desk" group
    colleague: User  # another agent with office hours, not in the group
    learner: User
    kind: object  # 60 minutes, availability from the "desk" group
    approval: object  # needs approval, same group
    tokens: dict

    def api(self, who: User | None) -> Api:
        return Api(self.client, self.tokens[who.id] if who else None)

    def token_for(self, user: User, name: str = "test") -> str:
        from app.accounts.service import create_api_token

        with self.app.app_context():
            begin_write()
            token = create_api_token(db.session.get(User, user.id), name)
            db.session.commit()
        self.tokens[user.id] = token
        return token

    def book(self, actor, people, start: datetime, kind=None, **kwargs):
        return self.factory.booking(actor, kind or self.kind, start, people, **kwargs)


@pytest.fixture
def world(app, factory, client) -> World:
    from app.accounts.hours import set_weekly_hours

    manager = factory.user("booking-manager", email="bm@example.test", name="Bea Manager")
    agent = factory.user("agent", email="ada@example.test", name="Ada Agent")
    colleague = factory.user("agent", email="cy@example.test", name="Cy Colleague")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    with app.app_context():
        begin_write()
        for person in (agent, colleague):
            set_weekly_hours(db.session.get(User, person.id), OFFICE)
        group = Group(slug="desk", name="Assessment desk")
        group.members = [db.session.get(User, agent.id)]
        db.session.add(group)
        db.session.commit()
        group_id = group.id
    common = dict(
        availability_source=AvailabilitySource.GROUP,
        availability_group_id=group_id,
        horizon_days=400,
    )
    kind = factory.booking_type(slug="review", name="Review", **common)
    approval = factory.booking_type(
        slug="planning", name="Planning meeting", requires_approval=True, **common
    )
    w = World(app, factory, client, manager, agent, colleague, learner, kind, approval, {})
    for user in (manager, agent, colleague, learner):
        w.token_for(user)
    return w
