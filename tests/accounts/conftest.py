"""Helpers for the access tests: bookings in a chosen state, one valid request per route,
and a whole-database snapshot to prove a refused request changed nothing."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.accounts.permissions import Perm
from tests.conftest import at

PUBLIC_ENDPOINTS = {"static", "accounts.login", "accounts.home"}
API_BLUEPRINT = "api"


def browser_rules(app) -> list:
    """The URL rules of the browser screens. The JSON API is left out: it authenticates only
    with bearer tokens (a session cookie is ignored) and is CSRF-exempt for that reason, and
    ``tests/api/test_auth.py`` holds its own every-route table for it."""
    return [
        rule for rule in app.url_map.iter_rules() if rule.endpoint.split(".", 1)[0] != API_BLUEPRINT
    ]


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- database snapshot ------------------------------------------------------------------


def db_state(app) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal snapshots mean nothing was written."""
    from app.extensions import db

    with app.app_context():
        state = {
            table.name: sorted((tuple(row) for row in db.session.execute(table.select())), key=repr)
            for table in db.metadata.sorted_tables
        }
        db.session.rollback()
    return state


def db_fingerprint(app) -> dict[str, object]:
    """What :func:`db_state` tells for comparing two moments, cheaper on PostgreSQL: one
    statement returns a digest of each table's sorted rows. Row by row that is a round trip
    per table for each snapshot, which was most of the hostile sweep's time there. SQLite
    answers in-process, so it keeps the full snapshot."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return db_state(app)
        quote = db.engine.dialect.identifier_preparer.quote
        digests = ", ".join(
            f"(SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) "
            f"FROM {quote(table.name)} r) AS {quote(table.name)}"
            for table in db.metadata.sorted_tables
        )
        fingerprint = dict(db.session.execute(text(f"SELECT {digests}")).mappings().one())
        db.session.rollback()
    return fingerprint


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


# --- a small world of bookings -----------------------------------------------------------


@dataclass
class Req:
    """One request to one route, valid in every respect except perhaps who sends it."""

    label: str
    method: str
    url: str
    data: dict = field(default_factory=dict)
    ok: int = 200  # the status when the sender is allowed
    permission: str | None = None  # None: signing in is enough
    booking_id: int | None = None  # set for routes guarded per booking
    involved: bool = False  # the sender is part of that booking


@dataclass
class World:
    app: object
    factory: object
    other: object  # an agent who owns the bookings nobody else is part of
    plain_type: object
    approval_type: object
    _days: itertools.count = field(default_factory=lambda: itertools.count(20))

    def future(self) -> datetime:
        """A future instant no other booking of this world uses (so holds never clash)."""
        return at(next(self._days))

    def past(self) -> datetime:
        return at(-next(self._days))

    def booking(self, holder, state: str = "confirmed", **kwargs):
        """A booking held by ``holder`` with one guest; state: provisional, confirmed, past."""
        from app.bookings.service import Guest

        kind = self.approval_type if state == "provisional" else self.plain_type
        when = self.past() if state == "past" else self.future()
        n = next(self._days)
        kwargs.setdefault("guests", [Guest(f"guest{n}@example.test", f"Guest {n}")])
        return self.factory.booking(None, kind, when, [holder], **kwargs)

    def attendee_id(self, booking, email_prefix: str = "guest") -> int:
        return next(a.id for a in booking.attendees if (a.email or "").startswith(email_prefix))

    @staticmethod
    def when_fields(when: datetime, zone: str = "Europe/London") -> dict:
        local = when.astimezone(ZoneInfo(zone))
        return {"day": local.date().isoformat(), "start": local.strftime("%H:%M")}

    def role_matrix_form(self, toggle: tuple[str, str] | None = None) -> dict:
        """The roles screen as a browser would post it, unchanged or with one box toggled."""
        from sqlalchemy import select

        from app.accounts.models import Role
        from app.extensions import db

        with self.app.app_context():
            roles = db.session.scalars(select(Role)).all()
            form = {f"role-{r.id}": sorted(r.permission_codes) for r in roles}
            form["roles-shown"] = [str(r.id) for r in roles]
            slugs = {r.slug: r.id for r in roles}
        if toggle:
            slug, code = toggle
            key = f"role-{slugs[slug]}"
            codes = set(form[key]) ^ {code}
            form[key] = sorted(codes)
        return form


@pytest.fixture
def world(app, factory, request) -> World:
    other = factory.user("agent", email="other@example.test", name="Otto Other")
    made = World(
        app=app,
        factory=factory,
        other=other,
        plain_type=factory.booking_type(name="Observation"),
        approval_type=factory.booking_type(name="Planning meeting", requires_approval=True),
    )
    made.fixture = request.getfixturevalue  # servers started only by the builders needing them
    return made


# --- one valid request per route ---------------------------------------------------------
#
# Each builder gets the world, the user whose booking it is (``holder``) and the user who will
# send the request (``actor``, None when anonymous), and returns requests that would succeed
# for someone allowed. A route without a builder fails the coverage tests.


def _object(label, method, url, booking, permission, ok, holder, actor, data=None) -> Req:
    return Req(
        label,
        method,
        url,
        data or {},
        ok,
        permission,
        booking.id,
        involved=actor is not None and holder.id == actor.id,
    )


def _act(world: World, holder, actor) -> list[Req]:
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    states = {
        "approve": "provisional",
        "reject": "provisional",
        "cancel": "confirmed",
        "complete": "past",
        "no_show": "past",  # started days ago: long past any waiting time
    }
    reqs = []
    for action, state in states.items():
        booking = world.booking(holder, state)
        reqs.append(
            _object(
                f"act:{action}",
                "POST",
                f"/bookings/{booking.id}/{action}",
                booking,
                ACTION_PERMISSION[Action(action)],
                303,
                holder,
                actor,
            )
        )
    return reqs


def _reschedule(world, holder, actor):
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    booking = world.booking(holder)
    return [
        _object(
            "reschedule",
            "POST",
            f"/bookings/{booking.id}/reschedule",
            booking,
            ACTION_PERMISSION[Action.RESCHEDULE],
            303,
            holder,
            actor,
            world.when_fields(world.future()),
        )
    ]


def _rebook(world, holder, actor):
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    booking = world.booking(holder)
    return [
        _object(
            "rebook",
            "POST",
            f"/bookings/{booking.id}/rebook",
            booking,
            ACTION_PERMISSION[Action.REBOOK],
            303,
            holder,
            actor,
            {"kind": "resit", **world.when_fields(world.future())},
        )
    ]


def _add_attendee(world, holder, actor):
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    booking = world.booking(holder)
    return [
        _object(
            "add_attendee",
            "POST",
            f"/bookings/{booking.id}/attendees",
            booking,
            ACTION_PERMISSION[Action.RESCHEDULE],
            303,
            holder,
            actor,
            {"user_id": "0", "email": "added@example.test", "name": "Added Guest"},
        )
    ]


def _remove_attendee(world, holder, actor):
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    booking = world.booking(holder)
    url = f"/bookings/{booking.id}/attendees/{world.attendee_id(booking)}/remove"
    return [
        _object(
            "remove_attendee",
            "POST",
            url,
            booking,
            ACTION_PERMISSION[Action.RESCHEDULE],
            303,
            holder,
            actor,
        )
    ]


def _detail(world, holder, actor):
    booking = world.booking(holder)
    return [_object("detail", "GET", f"/bookings/{booking.id}", booking, None, 200, holder, actor)]


def _index(world, holder, actor):
    return [Req("index", "GET", "/bookings")]


def _logout(world, holder, actor):
    return [Req("logout", "POST", "/logout", ok=302)]


def _new(world, holder, actor):
    me = actor or world.other
    data = {
        "booking_type": str(world.plain_type.id),
        "people": [str(me.id)],
        "learner": "0",
        "location_mode": "face_to_face",
        "location_detail": "",
        "description": "",
        # A Monday afternoon: the staff form asks for "book anyway" outside working hours
        # (issue 15), and the hours:week request of the sweep leaves its sender Mondays only.
        **world.when_fields(_monday_afternoon(world)),
    }
    need = GUARDED_PERMISSIONS["bookings.new"]
    return [
        Req("new:get", "GET", "/bookings/new", permission=need),
        Req("new:post", "POST", "/bookings/new", data, 302, need),
    ]


def _monday_afternoon(world) -> datetime:
    when = _weekday_afternoon(world)
    while when.weekday() != 0:
        when = _weekday_afternoon(world)
    return when


def _users(world, holder, actor):
    need = GUARDED_PERMISSIONS["admin.users"]
    return [Req("users", "GET", "/admin/users", ok=302, permission=need)]  # to /admin/people


def _reset_password(world, holder, actor):
    need = GUARDED_PERMISSIONS["admin.reset_password"]
    url = f"/admin/users/{world.other.id}/password"
    data = {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    return [
        Req("reset:get", "GET", url, permission=need),
        Req("reset:post", "POST", url, data, 302, need),
    ]


def _roles(world, holder, actor):
    need = GUARDED_PERMISSIONS["admin.roles"]
    data = world.role_matrix_form(toggle=("employer", Perm.CALENDAR_VIEW_TEAM.value))
    return [
        Req("roles:get", "GET", "/admin/roles", permission=need),
        Req("roles:post", "POST", "/admin/roles", data, 302, need),
    ]


def _own_rows(world, actor):
    """An override and a time-off row belonging to the sender (so deleting them can succeed)."""
    from app.accounts import hours
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    owner = actor or world.other
    day = world.future().date()
    with world.app.app_context():
        begin_write()
        user = db.session.get(User, owner.id)
        hours.set_override(user, day, [])
        off = hours.add_time_off(user, world.future(), world.future())
        db.session.commit()
        return day, off.id


def _hours(world, holder, actor):
    need = GUARDED_PERMISSIONS["hours.page"]
    return [Req("hours:get", "GET", "/me/availability", permission=need)]


def _hours_week(world, holder, actor):
    data = {"d0_start1": "09:00", "d0_end1": "17:00"}
    need = GUARDED_PERMISSIONS["hours.save_week"]
    return [Req("hours:week", "POST", "/me/availability/week", data, 303, need)]


def _hours_override(world, holder, actor):
    data = {"day": world.future().date().isoformat(), "start": "10:00", "end": "12:00"}
    need = GUARDED_PERMISSIONS["hours.add_override"]
    return [Req("hours:override", "POST", "/me/availability/overrides", data, 303, need)]


def _hours_override_delete(world, holder, actor):
    day, _ = _own_rows(world, actor)
    need = GUARDED_PERMISSIONS["hours.delete_override"]
    url = f"/me/availability/overrides/{day.isoformat()}/delete"
    return [Req("hours:override-delete", "POST", url, {}, 303, need)]


def _hours_time_off(world, holder, actor):
    data = {"start_day": world.future().date().isoformat(), "reason": "Leave"}
    need = GUARDED_PERMISSIONS["hours.add_time_off"]
    return [Req("hours:time-off", "POST", "/me/availability/time-off", data, 303, need)]


def _hours_time_off_delete(world, holder, actor):
    _, off_id = _own_rows(world, actor)
    need = GUARDED_PERMISSIONS["hours.delete_time_off"]
    url = f"/me/availability/time-off/{off_id}/delete"
    return [Req("hours:time-off-delete", "POST", url, {}, 303, need)]


# Routes guarded per booking (404 when the booking is not visible, then the action's permission).
OBJECT_BUILDERS = {
    "bookings.detail": _detail,
    "bookings.act": _act,
    "bookings.reschedule": _reschedule,
    "bookings.rebook": _rebook,
    "bookings.add_attendee": _add_attendee,
    "bookings.remove_attendee": _remove_attendee,
}
# Routes that only need a signed-in user.
LOGIN_ONLY_BUILDERS = {
    "bookings.index": _index,
    "accounts.logout": _logout,
}
# Routes behind ``permission_required``, with the permission each must demand.
GUARDED_PERMISSIONS = {
    "bookings.new": Perm.BOOKINGS_CREATE,
    "admin.users": Perm.USERS_MANAGE,
    "admin.reset_password": Perm.USERS_MANAGE,
    "admin.roles": Perm.ROLES_MANAGE,
    "hours.page": Perm.HOURS_EDIT_OWN,
    "hours.save_week": Perm.HOURS_EDIT_OWN,
    "hours.add_override": Perm.HOURS_EDIT_OWN,
    "hours.delete_override": Perm.HOURS_EDIT_OWN,
    "hours.add_time_off": Perm.HOURS_EDIT_OWN,
    "hours.delete_time_off": Perm.HOURS_EDIT_OWN,
}
GUARDED_BUILDERS = {
    "bookings.new": _new,
    "admin.users": _users,
    "admin.reset_password": _reset_password,
    "admin.roles": _roles,
    "hours.page": _hours,
    "hours.save_week": _hours_week,
    "hours.add_override": _hours_override,
    "hours.delete_override": _hours_override_delete,
    "hours.add_time_off": _hours_time_off,
    "hours.delete_time_off": _hours_time_off_delete,
}
# --- the team calendar (app/calendar): signed in for Me, calendar.view_team for Team ------


def _calendar(world, holder, actor):
    day = world.future().date().isoformat()
    return [
        Req("calendar:me", "GET", f"/calendar?scope=me&date={day}"),
        Req(
            "calendar:team",
            "GET",
            f"/calendar?scope=team&view=day&date={day}",
            permission=Perm.CALENDAR_VIEW_TEAM,
        ),
    ]


LOGIN_ONLY_BUILDERS["calendar.index"] = _calendar

# --- booking drawer, form preview and capacity screen (C3-C5) ------------------------------


def _weekday_afternoon(world) -> datetime:
    """A future weekday at 13:00 UTC (inside default working hours) no other request uses."""
    while True:
        when = world.future().replace(hour=13)
        if when.weekday() < 5:
            return when


def _edit(world, holder, actor):
    from app.bookings.lifecycle import Action
    from app.bookings.policy import ACTION_PERMISSION

    need = ACTION_PERMISSION[Action.RESCHEDULE]
    booking = world.booking(holder)
    url = f"/bookings/{booking.id}/edit"
    data = {**world.when_fields(world.future()), "location_detail": "Room 9", "description": ""}
    return [
        _object("edit:get", "GET", url, booking, need, 200, holder, actor),
        _object("edit:post", "POST", url, booking, need, 303, holder, actor, data),
    ]


def _preview(world, holder, actor):
    from urllib.parse import urlencode

    me = actor or world.other
    query = urlencode(
        {
            "booking_type": world.plain_type.id,
            "people": me.id,
            "learner": 0,
            **world.when_fields(world.future()),
        }
    )
    need = GUARDED_PERMISSIONS["bookings.preview"]
    return [Req("preview", "GET", f"/bookings/preview?{query}", permission=need)]


def _capacity(world, holder, actor):
    return [Req("capacity", "GET", "/capacity", permission=GUARDED_PERMISSIONS["capacity.index"])]


def _capacity_confirm(world, holder, actor):
    booking = world.booking(holder, "provisional")
    url = f"/capacity/confirm?action=approve&ids={booking.id}"
    return [Req("capacity:confirm", "GET", url, permission=GUARDED_PERMISSIONS["capacity.confirm"])]


def _capacity_bulk(world, holder, actor):
    booking = world.booking(holder, "provisional")
    data = {"action": "approve", "ids": [str(booking.id)]}
    need = GUARDED_PERMISSIONS["capacity.bulk"]
    return [Req("capacity:bulk", "POST", "/capacity/bulk", data, 303, need)]


def _capacity_reassign(world, holder, actor):
    booking = world.factory.booking(None, world.approval_type, _weekday_afternoon(world), [holder])
    free = world.factory.user("agent")
    url = f"/capacity/{booking.id}/reassign"
    need = GUARDED_PERMISSIONS["capacity.reassign"]
    return [
        Req("capacity:reassign-get", "GET", url, permission=need),
        Req("capacity:reassign", "POST", url, {"agent_id": str(free.id)}, 303, need),
    ]


OBJECT_BUILDERS["bookings.edit"] = _edit
GUARDED_PERMISSIONS.update(
    {
        "bookings.preview": Perm.BOOKINGS_CREATE,
        "capacity.index": Perm.CAPACITY_MANAGE,
        "capacity.confirm": Perm.CAPACITY_MANAGE,
        "capacity.bulk": Perm.CAPACITY_MANAGE,
        "capacity.reassign": Perm.CAPACITY_MANAGE,
    }
)
GUARDED_BUILDERS.update(
    {
        "bookings.preview": _preview,
        "capacity.index": _capacity,
        "capacity.confirm": _capacity_confirm,
        "capacity.bulk": _capacity_bulk,
        "capacity.reassign": _capacity_reassign,
    }
)

BUILDERS = {**OBJECT_BUILDERS, **LOGIN_ONLY_BUILDERS, **GUARDED_BUILDERS}

# --- meeting polls (app/polls, A5) ----------------------------------------------------------
#
# The organiser's pages are guarded per poll like bookings are per booking: 404 unless the
# sender organised the poll or holds bookings.view_all (``booking_id`` carries the poll id).
# The answer page is public: its token is the credential, so it sits in PUBLIC_ENDPOINTS and
# its POST is covered by PUBLIC_POST_BUILDERS (sent with no session, see test_csrf.py).

# Public routes that accept POST: builder(world) -> requests an anonymous sender may make.
PUBLIC_POST_BUILDERS: dict = {}


def _poll(world, organiser) -> tuple[int, int, str]:
    """An open poll by ``organiser`` over one free weekday afternoon, with one outside guest:
    (poll id, option id, the guest's plaintext token). Rows are written directly, so any role
    can be the organiser (the permission is what the requests test)."""
    from app.accounts.models import User
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db
    from app.polls.models import Poll, PollInvitee, PollOption
    from app.security import hash_token, new_token

    when = _weekday_afternoon(world)
    token = new_token("sbp")
    with world.app.app_context():
        begin_write()
        kind = db.session.get(BookingType, world.plain_type.id)
        poll = Poll(
            title="Poll",
            organiser=db.session.get(User, organiser.id),
            booking_type=kind,
            expires_at=when,
        )
        poll.options.append(PollOption(starts_at=when, ends_at=when + kind.duration))
        poll.invitees.append(
            PollInvitee(email="invitee@example.test", token_hash=hash_token(token))
        )
        db.session.add(poll)
        db.session.commit()
        return poll.id, poll.options[0].id, token


def _poll_detail(world, holder, actor):
    poll_id, _, _ = _poll(world, holder)
    url = f"/polls/{poll_id}"
    return [_object("poll:detail", "GET", url, _Id(poll_id), None, 200, holder, actor)]


def _poll_book(world, holder, actor):
    poll_id, option_id, _ = _poll(world, holder)
    return [
        _object(
            "poll:book",
            "POST",
            f"/polls/{poll_id}/book",
            _Id(poll_id),
            Perm.BOOKINGS_CREATE,
            303,
            holder,
            actor,
            {"option_id": str(option_id)},
        )
    ]


def _poll_new(world, holder, actor):
    # The sender is the organiser and, inviting nobody else, the only person held. A Monday:
    # the hours:week request earlier in the sweep leaves the sender working Mondays only.
    when = _weekday_afternoon(world)
    while when.weekday() != 0:
        when = _weekday_afternoon(world)
    need = GUARDED_PERMISSIONS["polls.new"]
    data = {"booking_type": str(world.plain_type.id), "starts": [when.isoformat()], "title": "P"}
    return [
        Req("poll:new-get", "GET", "/polls/new", permission=need),
        Req("poll:new-post", "POST", "/polls/new", data, 303, need),
    ]


def _poll_answer(world):
    _, option_id, token = _poll(world, world.other)
    url = f"/polls/answer/{token}"
    return [Req("poll:answer", "POST", url, {f"option-{option_id}": "yes"}, 200)]


@dataclass
class _Id:
    id: int


PUBLIC_ENDPOINTS.add("polls.answer")
PUBLIC_POST_BUILDERS["polls.answer"] = _poll_answer
OBJECT_BUILDERS["polls.detail"] = _poll_detail
OBJECT_BUILDERS["polls.book"] = _poll_book
GUARDED_PERMISSIONS["polls.new"] = Perm.BOOKINGS_CREATE
GUARDED_BUILDERS["polls.new"] = _poll_new
BUILDERS = {**OBJECT_BUILDERS, **LOGIN_ONLY_BUILDERS, **GUARDED_BUILDERS}

# --- public self-scheduling (app/public, S1-S5) ------------------------------------------------
#
# Every public page needs no sign-in: the landing page and slot picker are open to anyone when
# public scheduling is on, and the confirm/manage pages take their private link's token as the
# credential. Their POSTs are covered by PUBLIC_POST_BUILDERS (sent with no session).


def _public_world(world):
    """Public scheduling on and a public type drawing on ``world.other`` (made once)."""
    cached = getattr(world, "_public_kind", None)
    if cached is not None:
        return cached
    from app.accounts.models import Group, User
    from app.admin.settings import set_setting
    from app.bookings.models import BookingType
    from app.database import begin_write
    from app.extensions import db

    with world.app.app_context():
        begin_write()
        set_setting("public_scheduling_enabled", True)
        set_setting("max_bookings_per_contact_per_day", 0)
        group = Group(slug="public-csrf", name="Public")
        group.members.append(db.session.get(User, world.other.id))
        kind = BookingType(
            slug="public-visit",
            name="Public visit",
            bookable_by=["public"],
            availability_source="group",
            availability_group=group,
        )
        db.session.add_all([group, kind])
        db.session.commit()
        world._public_kind = (kind.id, kind.slug)
    return world._public_kind


def _public_slot(world, nth: int = 0):
    from datetime import UTC, timedelta

    from app.bookings.models import BookingType
    from app.extensions import db
    from app.public.service import offered_slots

    kind_id, _ = _public_world(world)
    with world.app.app_context():
        kind = db.session.get(BookingType, kind_id)
        lo = datetime.now(UTC) + timedelta(days=2)
        slots = offered_slots(kind, lo, lo + timedelta(days=14))
        db.session.rollback()
    return slots[nth * 7].start  # spread out so buffers never touch


def _public_booking(world, pending: bool = False) -> tuple[str, str | None]:
    """A visitor's booking: (manage token, confirm token or None)."""
    from datetime import timedelta

    from app.bookings.models import BookingType
    from app.database import begin_write, utcnow
    from app.extensions import db
    from app.public import service, tokens

    start = _public_slot(world)
    kind_id, _ = _public_world(world)
    n = next(world._days)
    with world.app.test_request_context():
        begin_write()
        kind = db.session.get(BookingType, kind_id)
        contact = service.Contact(f"V {n}", f"visitor{n}@example.test", None, "UTC")
        booking, record = service.book(kind, start, contact)
        manage = tokens.issue(booking, tokens.Purpose.MANAGE, booking.ends_at)
        confirm = None
        if pending:
            record.pending_confirmation = True
            record.confirm_deadline = utcnow() + timedelta(hours=1)
            confirm = tokens.issue(booking, tokens.Purpose.CONFIRM, record.confirm_deadline)
        db.session.commit()
    return manage, confirm


def _public_book(world):
    _, slug = _public_world(world)
    data = {
        "start": _public_slot(world).isoformat(),
        "tz": "UTC",
        "name": "Visitor",
        "email": f"v{next(world._days)}@example.test",
    }
    return [Req("public:book", "POST", f"/book/{slug}", data, 200)]


def _public_confirm(world):
    _, confirm = _public_booking(world, pending=True)
    return [Req("public:confirm", "POST", f"/book/confirm/{confirm}", {}, 200)]


def _public_cancel(world):
    manage, _ = _public_booking(world)
    return [Req("public:cancel", "POST", f"/book/manage/{manage}/cancel", {}, 200)]


def _public_reschedule(world):
    manage, _ = _public_booking(world)
    data = {"start": _public_slot(world, 1).isoformat(), "tz": "UTC"}
    return [Req("public:reschedule", "POST", f"/book/manage/{manage}/reschedule", data, 200)]


PUBLIC_ENDPOINTS.update(
    {
        "public.landing",
        "public.picker",
        "public.confirm",
        "public.manage",
        "public.cancel_page",
        "public.reschedule_page",
    }
)
PUBLIC_ENDPOINTS.update(
    {"public.book", "public.confirm_post", "public.cancel", "public.reschedule"}
)
PUBLIC_POST_BUILDERS.update(
    {
        "public.book": _public_book,
        "public.confirm_post": _public_confirm,
        "public.cancel": _public_cancel,
        "public.reschedule": _public_reschedule,
    }
)

# --- linked calendars (app/connections, K1-K2) ------------------------------------------------
#
# The personal pages need only a signed-in user; every connection or calendar id in their URLs
# is the sender's own (another person's id is a 404, tested in tests/connections). Adding a
# calendar queues a background check of it (a local ICS feed, the test Radicale, started only
# when these builders run) and changes no row until that job runs; "Connect Microsoft" only
# stores the sign-in flow in the session. Hence SESSION_ONLY_POSTS for the CSRF sweep.

from tests.connections import conftest as _calendar_servers  # noqa: E402
from tests.connections import test_cli as _connections_cli  # noqa: E402
from tests.connections.test_cli import default_feed  # noqa: E402
from tests.fakes import graph_server as _fake_microsoft  # noqa: E402

radicale = _calendar_servers.radicale  # fixtures the builders below start on demand
caldav_account = _calendar_servers.caldav_account
ics_server = _connections_cli.ics_server
graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls

SESSION_ONLY_POSTS = {
    "connections.microsoft_start",
    "connections.google_start",  # issue [12]: the same, towards Google
    "connections.add_ics",
    "connections.add_caldav",
    "settings_screens.test_email",  # only talks to SMTP (tests/admin/test_settings_screens.py)
}


def _allow_private_calendar_urls(world) -> None:
    from app.admin.settings import set_setting
    from app.database import begin_write
    from app.extensions import db

    with world.app.app_context():
        begin_write()
        set_setting("allow_private_calendar_urls", True)
        db.session.commit()


def _own_connection(world, actor, user_id=None) -> tuple[int, int]:
    """An ICS connection with one calendar, owned by the sender (or ``user_id``), written
    directly and just synced (an unread calendar would take its owner's slots away and fail
    the booking requests of the sweep): (connection id, calendar id)."""
    from app.connections.models import Connection, ConnectionKind, LinkedCalendar
    from app.database import begin_write, utcnow
    from app.extensions import db

    owner_id = user_id or (actor or world.other).id
    url = f"https://calendar.example.test/{next(world._days)}.ics"
    with world.app.app_context():
        begin_write()
        connection = Connection(
            kind=ConnectionKind.ICS,
            user_id=owner_id,
            url=url,
            label="Feed",
            last_success_at=utcnow(),
        )
        connection.calendars.append(
            LinkedCalendar(
                person_id=owner_id,
                remote_id=url,
                name="Feed",
                writable=False,
                last_synced_at=utcnow(),
            )
        )
        db.session.add(connection)
        db.session.commit()
        return connection.id, connection.calendars[0].id


def _calendars_page(world, holder, actor):
    return [Req("calendars", "GET", "/me/calendars")]


def _calendars_add_ics(world, holder, actor):
    _allow_private_calendar_urls(world)
    server = world.fixture("ics_server")
    url = server.publish(f"/{next(world._days)}.ics", default_feed())
    return [Req("calendars:add-ics", "POST", "/me/calendars/ics", {"url": url}, 303)]


def _calendars_add_caldav(world, holder, actor):
    _allow_private_calendar_urls(world)
    account = world.fixture("caldav_account")
    data = {"url": account.base_url, "username": account.username, "password": account.password}
    return [Req("calendars:add-caldav", "POST", "/me/calendars/caldav", data, 303)]


def _organisation_on_fake_microsoft(world):
    """The organisation's app registration, on the local Microsoft stand-in (made once)."""
    from sqlalchemy import select

    from app.connections.models import Connection, ConnectionKind
    from app.database import begin_write
    from app.extensions import db

    ms = world.fixture("graph_server")
    world.app.config.update(MS_AUTHORITY_HOST=ms.authority_host, MS_GRAPH_URL=ms.graph_url)
    with world.app.app_context():
        begin_write()
        if not db.session.scalars(
            select(Connection).where(Connection.kind == ConnectionKind.MICROSOFT_ORG)
        ).first():
            org = Connection(
                kind=ConnectionKind.MICROSOFT_ORG,
                tenant_id=ms.tenant_id,
                client_id=ms.client_id,
                label="Microsoft 365",
            )
            org.store_secret(ms.client_secret)
            db.session.add(org)
        db.session.commit()
    return ms


def _calendars_microsoft(world, holder, actor):
    # Answered with a redirect to Microsoft's sign-in; only the session changes.
    _organisation_on_fake_microsoft(world)
    return [Req("calendars:microsoft", "POST", "/me/calendars/microsoft", {}, 303)]


def _calendars_callback(world, holder, actor):
    url = "/me/calendars/microsoft/callback?code=abc&state=not-started-here"
    return [Req("calendars:callback", "GET", url, ok=303)]


def _calendar_options(world, holder, actor):
    _, calendar_id = _own_connection(world, actor)
    url = f"/me/calendars/calendars/{calendar_id}"
    return [Req("calendars:options", "POST", url, {}, 303)]  # unticks "counts for availability"


def _calendars_sync(world, holder, actor):
    connection_id, _ = _own_connection(world, actor)
    return [Req("calendars:sync", "POST", f"/me/calendars/{connection_id}/sync", {}, 303)]


def _calendars_disconnect_confirm(world, holder, actor):
    connection_id, _ = _own_connection(world, actor)
    return [Req("calendars:disconnect-get", "GET", f"/me/calendars/{connection_id}/disconnect")]


def _calendars_disconnect(world, holder, actor):
    connection_id, _ = _own_connection(world, actor)
    url = f"/me/calendars/{connection_id}/disconnect"
    return [Req("calendars:disconnect", "POST", url, {}, 303)]


def _admin_calendars(world, holder, actor):
    need = GUARDED_PERMISSIONS["connections.admin"]
    return [Req("admin-calendars", "GET", "/admin/calendars", permission=need)]


def _admin_calendars_save(world, holder, actor):
    """Turn "Show event details" on; a blank secret keeps the saved one, so nothing needs
    checking with Microsoft."""
    ms = _organisation_on_fake_microsoft(world)
    data = {
        "tenant_id": ms.tenant_id,
        "client_id": ms.client_id,
        "client_secret": "",
        "show_details": "y",
    }
    need = GUARDED_PERMISSIONS["connections.admin_save"]
    return [Req("admin-calendars:save", "POST", "/admin/calendars", data, 303, need)]


def _admin_calendars_sync(world, holder, actor):
    connection_id, _ = _own_connection(world, actor, user_id=world.other.id)
    url = f"/admin/calendars/{connection_id}/sync"
    need = GUARDED_PERMISSIONS["connections.admin_sync"]
    return [Req("admin-calendars:sync", "POST", url, {}, 303, need)]


LOGIN_ONLY_BUILDERS.update(
    {
        "connections.index": _calendars_page,
        "connections.add_ics": _calendars_add_ics,
        "connections.add_caldav": _calendars_add_caldav,
        "connections.microsoft_start": _calendars_microsoft,
        "connections.microsoft_callback": _calendars_callback,
        "connections.calendar_options": _calendar_options,
        "connections.sync_now": _calendars_sync,
        "connections.disconnect_confirm": _calendars_disconnect_confirm,
        "connections.disconnect": _calendars_disconnect,
    }
)
GUARDED_PERMISSIONS.update(
    {
        "connections.admin": Perm.INTEGRATIONS_MANAGE,
        "connections.admin_save": Perm.INTEGRATIONS_MANAGE,
        "connections.admin_sync": Perm.INTEGRATIONS_MANAGE,
    }
)
GUARDED_BUILDERS.update(
    {
        "connections.admin": _admin_calendars,
        "connections.admin_save": _admin_calendars_save,
        "connections.admin_sync": _admin_calendars_sync,
    }
)
# --- personal calendar feeds (app/notifications/feed_routes.py, F1) ---------------------------
#
# The feed itself is public: its token is the credential (tests/notifications/test_feeds.py).
# The controls under /me/feed need only a signed-in user and act on the sender's own feed.


def _forget_feed(world, actor) -> None:
    """No feed for the sender, so "Create feed URL" makes one (and so changes a row)."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.models import FeedToken

    if actor is None:
        return
    with world.app.app_context():
        begin_write()
        row = db.session.get(FeedToken, actor.id)
        if row is not None:
            db.session.delete(row)
        db.session.commit()


def _feed_page(world, holder, actor):
    return [Req("feed:page", "GET", "/me/feed")]


def _feed_regenerate_confirm(world, holder, actor):
    return [Req("feed:regenerate-get", "GET", "/me/feed/regenerate")]


def _feed_create(world, holder, actor):
    _forget_feed(world, actor)
    return [Req("feed:create", "POST", "/me/feed", {}, 200)]


def _feed_regenerate(world, holder, actor):
    return [Req("feed:regenerate", "POST", "/me/feed/regenerate", {}, 200)]


PUBLIC_ENDPOINTS.add("feeds.feed")
LOGIN_ONLY_BUILDERS.update(
    {
        "feeds.page": _feed_page,
        "feeds.regenerate_confirm": _feed_regenerate_confirm,
        "feeds.create": _feed_create,
        "feeds.regenerate": _feed_regenerate,
    }
)
# --- the bell and the notifications admin screen (app/notifications/routes.py, N1, N4) -------
#
# /me/notifications acts only on the sender's own notifications (another person's id is a 404,
# tests/notifications/test_inapp.py); /admin/notifications needs settings.manage.


def _own_notification(world, actor) -> int:
    """An unread notification for the sender (``world.other`` when anonymous)."""
    from app.database import begin_write
    from app.extensions import db
    from app.notifications.models import Notification

    owner = actor or world.other
    with world.app.app_context():
        begin_write()
        row = Notification(user_id=owner.id, rule="meeting_invite", title="Meeting invite")
        db.session.add(row)
        db.session.commit()
        return row.id


def _failed_sms(world) -> int:
    """A ``notify.sms`` row that gave up (queued again by a retry; no worker runs here)."""
    from app.database import begin_write
    from app.extensions import db
    from app.outbox import FAILED, OutboxMessage

    payload = {"to": "+447700900123", "text": "Reminder", "rule": "reminder", "source": None}
    with world.app.app_context():
        begin_write()
        row = OutboxMessage(
            kind="notify.sms",
            payload=payload,
            status=FAILED,
            attempts=8,
            last_error="SmsError: SMS gateway answered HTTP 500",
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def _notifications_page(world, holder, actor):
    return [Req("notifications", "GET", "/me/notifications")]


def _notifications_count(world, holder, actor):
    return [Req("notifications:count", "GET", "/me/notifications/count")]


def _notification_read(world, holder, actor):
    url = f"/me/notifications/{_own_notification(world, actor)}/read"
    return [Req("notifications:read", "POST", url, {}, 303)]


def _notifications_read_all(world, holder, actor):
    _own_notification(world, actor)
    return [Req("notifications:read-all", "POST", "/me/notifications/read-all", {}, 303)]


def _notifications_admin(world, holder, actor):
    need = GUARDED_PERMISSIONS["notifications.admin"]
    return [Req("notifications-admin", "GET", "/admin/notifications", permission=need)]


def _notifications_admin_channels(world, holder, actor):
    """The matrix as shown (defaults), with SMS switched on for reminders."""
    from app.notifications.rules import RULES, Channel, Rule

    ticked = [
        f"{rule.value}.{c.value}" for rule, info in RULES.items() for c in info.default_channels
    ]
    data = {
        "rules-shown": [rule.value for rule in RULES],
        "channel": [*ticked, f"{Rule.REMINDER.value}.{Channel.SMS.value}"],
    }
    need = GUARDED_PERMISSIONS["notifications.admin_channels"]
    url = "/admin/notifications/channels"
    return [Req("notifications-admin:channels", "POST", url, data, 303, need)]


def _notifications_admin_retry(world, holder, actor):
    url = f"/admin/notifications/messages/{_failed_sms(world)}/retry"
    need = GUARDED_PERMISSIONS["notifications.admin_retry"]
    return [Req("notifications-admin:retry", "POST", url, {}, 303, need)]


LOGIN_ONLY_BUILDERS.update(
    {
        "notifications.index": _notifications_page,
        "notifications.count": _notifications_count,
        "notifications.mark_read": _notification_read,
        "notifications.mark_all_read": _notifications_read_all,
    }
)
GUARDED_PERMISSIONS.update(
    {
        "notifications.admin": Perm.SETTINGS_MANAGE,
        "notifications.admin_channels": Perm.SETTINGS_MANAGE,
        "notifications.admin_retry": Perm.SETTINGS_MANAGE,
    }
)
GUARDED_BUILDERS.update(
    {
        "notifications.admin": _notifications_admin,
        "notifications.admin_channels": _notifications_admin_channels,
        "notifications.admin_retry": _notifications_admin_retry,
    }
)
# The organisation screens of issue [07] keep their builders in modules of their own: each
# module's ``register(tables)`` adds its routes to the dicts named in ``tables``.
from tests.accounts import (  # noqa: E402
    perm_booking_types,
    perm_branding,
    perm_google,
    perm_groups,
    perm_health,
    perm_journeys,
    perm_learner,
    perm_otj,
    perm_passwords,
    perm_people,
    perm_settings,
    perm_to_assign,
    perm_tokens,
    perm_webhooks,
)

_TABLES = {
    "Req": Req,
    "OBJECT_BUILDERS": OBJECT_BUILDERS,
    "LOGIN_ONLY_BUILDERS": LOGIN_ONLY_BUILDERS,
    "GUARDED_PERMISSIONS": GUARDED_PERMISSIONS,
    "GUARDED_BUILDERS": GUARDED_BUILDERS,
    "PUBLIC_ENDPOINTS": PUBLIC_ENDPOINTS,
    "PUBLIC_POST_BUILDERS": PUBLIC_POST_BUILDERS,
}
for _area in (
    perm_people,
    perm_groups,
    perm_booking_types,
    perm_passwords,
    perm_learner,
    perm_settings,
    perm_tokens,
    perm_webhooks,
    perm_to_assign,
    perm_branding,
    perm_health,
    perm_journeys,
    perm_otj,
    perm_google,
):
    _area.register(_TABLES)

# The calendar routes go last in the sweeps: a newly linked calendar is unread until its first
# sync, and until then its owner offers no slots (fail closed), which would refuse the booking
# and poll requests of the same sweep.
_EVERY = {**OBJECT_BUILDERS, **LOGIN_ONLY_BUILDERS, **GUARDED_BUILDERS}
BUILDERS = dict(sorted(_EVERY.items(), key=lambda item: item[0].startswith("connections.")))
