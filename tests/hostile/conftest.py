"""One valid request per route: the templates the hostile sweep corrupts.

The browser routes reuse the access tests' builders (``tests/accounts/conftest.py``): each gives
a request that would succeed, so its path ids exist and its field names are the ones the view
reads. Routes those tables leave out (public pages, the API, sign-in, static files) and the
calendar routes that would need a live calendar server are described here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.accounts.conftest import (
    BUILDERS,
    PUBLIC_POST_BUILDERS,
    World,
    _poll,
    _public_booking,
    _public_slot,
    _public_world,
    world,  # noqa: F401 - the access tests' small world, used as it is
)
from tests.accounts.perm_passwords import fresh_link
from tests.conftest import login

# Calendar routes whose builders start real calendar servers: described below instead, with
# only the field names (every value the sweep sends there is hostile, so nothing is fetched).
OWN_TEMPLATES = {
    "connections.add_ics",
    "connections.add_caldav",
    "connections.microsoft_start",
    "connections.admin_save",
}


@dataclass(frozen=True)
class Template:
    """One valid request: the route, its concrete path values, query and body fields."""

    endpoint: str
    method: str
    rule: str
    path_args: dict = field(hash=False)
    query: tuple = ()  # (name, value) pairs
    fields: dict = field(default_factory=dict, hash=False)  # form fields, or the JSON body
    is_json: bool = False


@dataclass
class Sweep:
    """Everything the hostile sweep needs: the app, the world, the owner and the templates."""

    app: object
    world: World
    owner: object
    api_token: str
    templates: list[Template]


def _template(app, endpoint: str, method: str, url: str, data=None, is_json=False) -> Template:
    """A template from a concrete request: the rule and path values by matching the URL."""
    parts = urlsplit(url)
    adapter = app.url_map.bind("localhost")
    rule, _ = adapter.match(parts.path, method=method, return_rule=True)
    assert rule.endpoint == endpoint, (url, rule.endpoint, endpoint)
    raw_args = _raw_path_args(rule.rule, parts.path)
    return Template(
        endpoint,
        method,
        rule.rule,
        raw_args,
        tuple(parse_qsl(parts.query, keep_blank_values=True)),
        dict(data or {}),
        is_json,
    )


PARAM = re.compile(r"<(?:[^:<>]+:)?([a-z_]+)>")


def rule_regex(rule: str) -> re.Pattern:
    """A pattern for the paths of ``rule``, one named group per placeholder."""
    out, last = [], 0
    for m in PARAM.finditer(rule):
        out.append(re.escape(rule[last : m.start()]))
        body = ".+" if m.group(0).startswith("<path:") else "[^/]+"
        out.append(f"(?P<{m.group(1)}>{body})")
        last = m.end()
    out.append(re.escape(rule[last:]))
    return re.compile("^" + "".join(out) + "$")


def _raw_path_args(rule: str, path: str) -> dict[str, str]:
    """The path's values as they appear in the URL, by the rule's placeholders."""
    match = rule_regex(rule).match(path)
    assert match, (rule, path)
    return match.groupdict()


# --- routes the access tables leave out ------------------------------------------------------


def _public_templates(app, scene) -> list[Template]:
    _, slug = _public_world(scene)
    manage, _ = _public_booking(scene)
    _, confirm = _public_booking(scene, pending=True)
    _, _, poll_token = _poll(scene, scene.other)
    _, set_token = fresh_link(app)
    day = _public_slot(scene).date().isoformat()
    query = f"day={day}&tz=UTC"
    return [
        _template(app, "accounts.home", "GET", "/"),
        _template(app, "accounts.login", "GET", "/login?next=/bookings"),
        _template(
            app, "accounts.login", "POST", "/login", {"email": "no@example.test", "password": "x"}
        ),
        _template(app, "static", "GET", "/static/css/slotbook.css"),
        _template(app, "public.landing", "GET", "/book"),
        _template(app, "public.picker", "GET", f"/book/{slug}?{query}"),
        _template(app, "public.confirm", "GET", f"/book/confirm/{confirm}"),
        _template(app, "public.manage", "GET", f"/book/manage/{manage}"),
        _template(app, "public.cancel_page", "GET", f"/book/manage/{manage}/cancel"),
        _template(
            app, "public.reschedule_page", "GET", f"/book/manage/{manage}/reschedule?{query}"
        ),
        _template(app, "polls.answer", "GET", f"/polls/answer/{poll_token}"),
        _template(app, "passwords.set_password", "GET", f"/set-password/{set_token}"),
        _template(app, "passwords.forgot_password", "GET", "/forgot-password"),
        _template(app, "feeds.feed", "GET", f"/feeds/{_feed_token(app, scene)}.ics"),
        _template(app, "branding.logo", "GET", _logo_url(app)),
        _template(app, "health.healthz", "GET", "/healthz"),
        _template(app, "health.readyz", "GET", "/readyz"),
    ]


def _logo_url(app) -> str:
    """The path of a stored logo (the branding screen's public image URL)."""
    from app.admin.branding import save_logo
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        logo = save_logo(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
        db.session.commit()
    return f"/branding/logo-{logo.digest}.{logo.extension}"


def _feed_token(app, scene) -> str:
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.feeds import rotate

    with app.app_context():
        begin_write()
        token = rotate(db.session.get(User, scene.other.id))
        db.session.commit()
    return token


def _calendar_templates(app) -> list[Template]:
    return [
        _template(app, "connections.add_ics", "POST", "/me/calendars/ics", {"url": ""}),
        _template(
            app,
            "connections.add_caldav",
            "POST",
            "/me/calendars/caldav",
            {"url": "", "username": "", "password": ""},
        ),
        _template(app, "connections.microsoft_start", "POST", "/me/calendars/microsoft", {}),
        _template(
            app,
            "connections.admin_save",
            "POST",
            "/admin/calendars",
            {"tenant_id": "", "client_id": "", "client_secret": "", "show_details": "y"},
        ),
    ]


def _api_templates(app, scene, owner) -> list[Template]:
    """Every API route with a body or query that would succeed for the owner."""
    from app.accounts.models import Group
    from app.database import begin_write
    from app.extensions import db

    kind = scene.plain_type
    booking = scene.booking(owner)
    start = scene.future()
    with app.app_context():
        begin_write()
        group = Group(slug="hostile-desk", name="Hostile desk")
        db.session.add(group)
        db.session.commit()
        group_id = group.id
    window = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
    other = scene.other.id
    v1 = "/api/v1"
    specs = [
        ("api.openapi", "GET", f"{v1}/openapi.json", None),
        ("api.booking_types", "GET", f"{v1}/booking-types", None),
        ("api.create_booking_type", "POST", f"{v1}/booking-types", {"name": "Intro"}),
        (
            "api.update_booking_type",
            "PATCH",
            f"{v1}/booking-types/{kind.slug}",
            {"description": "Bring a pen.", "duration_minutes": 30},
        ),
        ("api.list_bookings", "GET", f"{v1}/bookings", None, window),
        (
            "api.availability",
            "GET",
            f"{v1}/availability",
            None,
            {**window, "booking_type": kind.slug, "tz": "Europe/London", "people": str(other)},
        ),
        (
            "api.create_booking",
            "POST",
            f"{v1}/bookings",
            {"booking_type": kind.slug, "start": start.isoformat(), "people": [other]},
        ),
        ("api.get_booking", "GET", f"{v1}/bookings/{booking.id}", None),
        (
            "api.update_booking",
            "PATCH",
            f"{v1}/bookings/{booking.id}",
            {"description": "Notes", "start": scene.future().isoformat()},
        ),
        ("api.cancel_booking", "POST", f"{v1}/bookings/{booking.id}/cancel", None),
        ("api.list_groups", "GET", f"{v1}/groups", None),
        ("api.create_group", "POST", f"{v1}/groups", {"name": "Night desk"}),
        ("api.set_group_members", "PUT", f"{v1}/groups/{group_id}/members", {"members": [other]}),
        ("api.people", "GET", f"{v1}/people", None, {"role": "agent", "page": "1", "q": "o"}),
        (
            "api.create_person",
            "POST",
            f"{v1}/people",
            {"name": "New", "email": "new@example.test", "role": "agent"},
        ),
        ("api.get_person", "GET", f"{v1}/people/{other}", None),
        ("api.update_person", "PATCH", f"{v1}/people/{other}", {"name": "Otto", "active": True}),
        (
            "api.set_working_hours",
            "PUT",
            f"{v1}/people/{other}/working-hours",
            {"week": {"mon": [["09:00", "17:00"]]}},
        ),
    ]
    templates = []
    for endpoint, method, url, body, *query in specs:
        template = _template(app, endpoint, method, url, body, is_json=True)
        if query:
            template = Template(
                endpoint,
                method,
                template.rule,
                template.path_args,
                tuple(query[0].items()),
                template.fields,
                True,
            )
        templates.append(template)
    return templates


def _browser_templates(app, scene, owner) -> list[Template]:
    templates = []
    for endpoint, builder in BUILDERS.items():
        if endpoint in OWN_TEMPLATES:
            continue
        for req in builder(scene, owner, owner):
            templates.append(_template(app, endpoint, req.method, req.url, req.data))
    for endpoint, builder in PUBLIC_POST_BUILDERS.items():
        for req in builder(scene):
            templates.append(_template(app, endpoint, req.method, req.url, req.data))
    return templates


@pytest.fixture
def sweep(app, factory, world) -> Sweep:  # noqa: F811 - the imported fixture, by name
    """The world with one valid request per route, built as the owner."""
    from app.accounts.models import User
    from app.accounts.service import create_api_token
    from app.database import begin_write
    from app.extensions import db

    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    with app.app_context():
        begin_write()
        api_token = create_api_token(db.session.get(User, owner.id), "hostile")
        db.session.commit()
    templates = [
        *_browser_templates(app, world, owner),
        *_public_templates(app, world),
        *_calendar_templates(app),
        *_api_templates(app, world, owner),
    ]
    return Sweep(app, world, owner, api_token, templates)


def signed_in(app, owner):
    """A client signed in as the owner."""
    client = app.test_client()
    login(client, owner.email)
    return client
