"""P1/P2: the permission matrix, per route and per booking, and the matrix as editable data."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import Role
from app.accounts.permissions import BUILTIN_ROLES, OWNER_LOCKED, Perm
from app.bookings.models import AuditEntry, Booking, Hold, Status
from app.extensions import db
from tests.accounts.conftest import (
    BUILDERS,
    GUARDED_BUILDERS,
    GUARDED_PERMISSIONS,
    LOGIN_ONLY_BUILDERS,
    OBJECT_BUILDERS,
    PUBLIC_ENDPOINTS,
    Req,
    browser_rules,
    changed_tables,
    db_state,
)
from tests.conftest import csrf_from, login

ROLE_PERMISSIONS = {slug: {p.value for p in perms} for slug, (_, perms, _) in BUILTIN_ROLES.items()}
ROUTE_ORDER = [e for e in BUILDERS if e != "accounts.logout"] + ["accounts.logout"]


def _view(app, endpoint):
    return app.view_functions[endpoint]


def _assert_table_covers(app) -> None:
    endpoints = {rule.endpoint for rule in browser_rules(app)} - PUBLIC_ENDPOINTS
    assert endpoints == set(BUILDERS), (
        f"routes missing from the permission table: {sorted(endpoints - set(BUILDERS))}; "
        f"table entries with no route: {sorted(set(BUILDERS) - endpoints)}"
    )
    assert set(GUARDED_PERMISSIONS) == set(GUARDED_BUILDERS)
    for endpoint, pinned in GUARDED_PERMISSIONS.items():
        declared = getattr(_view(app, endpoint), "required_permission", None)
        assert declared is not None, f"{endpoint} lost its permission_required guard"
        assert declared == pinned, f"{endpoint} requires {declared}, the table says {pinned}"
    for endpoint in {**OBJECT_BUILDERS, **LOGIN_ONLY_BUILDERS}:
        assert not hasattr(_view(app, endpoint), "required_permission"), (
            f"{endpoint} is now permission_required: move it to GUARDED_BUILDERS"
        )
    act_rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "bookings.act")
    assert act_rule._converters["action"].items == {
        "approve",
        "reject",
        "cancel",
        "complete",
        "no_show",
    }


def test_every_route_is_in_the_table(app):
    """Each endpoint of the URL map has a request builder and the guard the table expects."""
    _assert_table_covers(app)


def _expected(role: str, req: Req) -> int | str:
    if role == "anonymous":
        return "login"
    perms = ROLE_PERMISSIONS[role]
    if req.booking_id is not None and not (req.involved or Perm.BOOKINGS_VIEW_ALL in perms):
        return 404
    if req.permission is None or req.permission in perms:
        return req.ok
    return 403


def _send(client, req: Req, token: str | None):
    if req.method == "GET":
        return client.get(req.url)
    return client.post(req.url, data={**req.data, "csrf_token": token})


@pytest.mark.parametrize("role", [*BUILTIN_ROLES, "anonymous"])
def test_permission_matrix(app, client, factory, world, role):
    """Each route: anonymous -> login; lacking -> 403/404, nothing written; holding -> works."""
    _assert_table_covers(app)
    actor = None if role == "anonymous" else factory.user(role)
    if actor is None:
        token = csrf_from(client, "/login")
    else:
        login(client, actor.email)
        token = csrf_from(client, "/bookings")
    failures = []
    for endpoint in ROUTE_ORDER:
        builder = BUILDERS[endpoint]
        holders = (
            [world.other]
            if actor is None or endpoint not in OBJECT_BUILDERS
            else [actor, world.other]
        )
        for holder in holders:
            for req in builder(world, holder, actor):
                expected = _expected(role, req)
                before = db_state(app) if expected != req.ok else None
                response = _send(client, req, token)
                where = f"{role} {req.method} {req.url} ({req.label}, own={req.involved})"
                location = response.headers.get("Location", "")
                if expected == "login":
                    if response.status_code != 302 or not location.startswith("/login?next="):
                        failures.append(f"{where}: {response.status_code} {location}, want login")
                elif response.status_code != expected:
                    failures.append(f"{where}: {response.status_code}, want {expected}")
                elif expected in (302, 303) and location.startswith("/login") != (
                    endpoint == "accounts.logout"
                ):
                    failures.append(f"{where}: redirected to {location}")
                if before is not None and (changed := changed_tables(before, db_state(app))):
                    failures.append(f"{where}: refused but wrote to {changed}")
    assert not failures, "\n".join(failures)
    if actor is not None:  # the last request was the logout
        assert client.get("/bookings").status_code == 302


# --- object access by guessed ids -------------------------------------------------------


def _booking_facts(app, booking_id: int) -> tuple:
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        holds = sorted((h.person_id, h.active, h.starts_at) for h in booking.holds)
        audit = db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.booking_id == booking_id)
        )
        return booking.status, booking.starts_at, len(booking.attendees), holds, audit


def test_agent_cannot_reach_another_agents_booking_by_id(app, client, factory, world):
    """Agent A gets 404 for every read or change of agent B's booking, and nothing changes."""
    a = factory.user("agent", email="a@example.test")
    b = factory.user("agent", email="b@example.test")
    secret = world.booking(b, "confirmed", title="B's private review")
    login(client, a.email)
    token = csrf_from(client, "/bookings")
    before = db_state(app)
    assert client.get(f"/bookings/{secret.id}").status_code == 404
    guest = world.attendee_id(secret)
    posts = {
        "cancel": {},
        "complete": {},
        "approve": {},
        "reject": {},
        "reschedule": world.when_fields(world.future()),
        "rebook": {"kind": "resit", **world.when_fields(world.future())},
        "attendees": {"user_id": "0", "email": "x@example.test"},
        f"attendees/{guest}/remove": {},
    }
    for path, data in posts.items():
        response = client.post(f"/bookings/{secret.id}/{path}", data={**data, "csrf_token": token})
        assert response.status_code == 404, path
    index = client.get("/bookings").get_data(as_text=True)
    assert "B&#39;s private review" not in index and f'/bookings/{secret.id}"' not in index
    assert changed_tables(before, db_state(app)) == []


def test_agent_cannot_remove_an_attendee_of_another_booking_through_their_own(
    app, client, factory, world
):
    """An attendee id from someone else's booking is 404 even under a booking the agent owns."""
    a = factory.user("agent", email="a@example.test")
    mine = world.booking(a)
    theirs = world.booking(world.other)
    login(client, a.email)
    before = _booking_facts(app, theirs.id)
    url = f"/bookings/{mine.id}/attendees/{world.attendee_id(theirs)}/remove"
    response = client.post(url, data={"csrf_token": csrf_from(client, f"/bookings/{mine.id}")})
    assert response.status_code == 404
    assert _booking_facts(app, theirs.id) == before


def test_agent_cannot_approve_their_own_booking(app, client, factory, world):
    """An agent lacks bookings.approve: 403 on approve/reject of their own request, no change."""
    a = factory.user("agent", email="a@example.test")
    booking = world.booking(a, "provisional")
    login(client, a.email)
    page = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert f"/bookings/{booking.id}/approve" not in page  # no button either
    token = csrf_from(client, f"/bookings/{booking.id}")
    before = _booking_facts(app, booking.id)
    for action in ("approve", "reject"):
        response = client.post(f"/bookings/{booking.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
    assert _booking_facts(app, booking.id) == before
    assert before[0] == Status.PROVISIONAL


def test_booking_manager_can_approve_any_booking(app, client, factory, world):
    """A booking manager approves a booking they are not part of; status and audit show it."""
    manager = factory.user("booking-manager", email="bm@example.test")
    booking = world.booking(world.other, "provisional")
    login(client, manager.email)
    token = csrf_from(client, f"/bookings/{booking.id}")
    response = client.post(f"/bookings/{booking.id}/approve", data={"csrf_token": token})
    assert response.status_code == 303
    with app.app_context():
        row = db.session.get(Booking, booking.id)
        assert row.status == Status.CONFIRMED
        last = row.audit_entries[-1]
        assert last.actor_id == manager.id
        assert last.changes == {"status": ["provisional", "confirmed"]}
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(Hold)
                .where(Hold.booking_id == booking.id, Hold.active.is_(True))
            )
            == 1
        )


def test_learner_sees_only_bookings_they_are_in(app, client, factory, world):
    """A learner lists and opens their own bookings only, and cannot change them."""
    learner = factory.user("learner", email="lee@example.test")
    theirs = world.booking(world.other, title="Lee's gateway review", learner=learner)
    hidden = world.booking(world.other, title="Someone else's review")
    login(client, learner.email)
    index = client.get("/bookings").get_data(as_text=True)
    assert "Lee&#39;s gateway review" in index
    assert "Someone else&#39;s review" not in index
    assert client.get(f"/bookings/{theirs.id}").status_code == 200
    assert client.get(f"/bookings/{hidden.id}").status_code == 404
    token = csrf_from(client, f"/bookings/{theirs.id}")
    before = _booking_facts(app, theirs.id)
    assert (
        client.post(f"/bookings/{theirs.id}/cancel", data={"csrf_token": token}).status_code == 403
    )
    assert (
        client.post(f"/bookings/{hidden.id}/cancel", data={"csrf_token": token}).status_code == 404
    )
    assert _booking_facts(app, theirs.id) == before


# --- the matrix is data -----------------------------------------------------------------


def _role_codes(app, slug: str) -> set[str]:
    with app.app_context():
        role = db.session.scalars(select(Role).where(Role.slug == slug)).one()
        return set(role.permission_codes)


def test_owner_edits_the_matrix_and_it_takes_effect(app, factory, world):
    """Removing bookings.approve from booking-manager turns their next approve into a 403."""
    owner = factory.user("owner", email="owner@example.test")
    manager = factory.user("booking-manager", email="bm@example.test")
    first = world.booking(world.other, "provisional")
    second = world.booking(world.other, "provisional")
    owner_client, bm_client = app.test_client(), app.test_client()
    login(owner_client, owner.email)
    login(bm_client, manager.email)
    bm_token = csrf_from(bm_client, "/bookings")
    assert (
        bm_client.post(f"/bookings/{first.id}/approve", data={"csrf_token": bm_token}).status_code
        == 303
    )

    form = world.role_matrix_form(toggle=("booking-manager", Perm.BOOKINGS_APPROVE.value))
    response = owner_client.post(
        "/admin/roles", data={**form, "csrf_token": csrf_from(owner_client, "/admin/roles")}
    )
    assert response.status_code == 302
    assert Perm.BOOKINGS_APPROVE.value not in _role_codes(app, "booking-manager")
    assert _role_codes(app, "manager") == ROLE_PERMISSIONS["manager"]  # others untouched

    before = _booking_facts(app, second.id)
    assert (
        bm_client.post(f"/bookings/{second.id}/approve", data={"csrf_token": bm_token}).status_code
        == 403
    )
    assert _booking_facts(app, second.id) == before
    assert bm_client.get(f"/bookings/{second.id}").status_code == 200  # still sees it


def test_owner_cannot_strip_their_own_admin_permissions(app, client, factory, world):
    """Posting an empty owner column keeps the locked permissions (roles, people); the rest goes."""
    owner = factory.user("owner", email="owner@example.test")
    login(client, owner.email)
    with app.app_context():
        owner_role = db.session.scalars(select(Role).where(Role.slug == "owner")).one().id
    form = {**world.role_matrix_form(), f"role-{owner_role}": []}
    response = client.post(
        "/admin/roles", data={**form, "csrf_token": csrf_from(client, "/admin/roles")}
    )
    assert response.status_code == 302
    assert _role_codes(app, "owner") == {p.value for p in OWNER_LOCKED}
    assert client.get("/admin/roles").status_code == 200
    assert client.get("/admin/people").status_code == 200
    assert client.get("/bookings/new").status_code == 403  # the unlocked ones did go


def test_a_role_missing_from_the_posted_page_keeps_its_permissions(app, client, factory, world):
    """Only roles that were on the page are rewritten: a role added meanwhile is untouched."""
    owner = factory.user("owner", email="owner@example.test")
    login(client, owner.email)
    before = _role_codes(app, "agent")
    form = world.role_matrix_form()
    with app.app_context():
        agent_id = db.session.scalars(select(Role).where(Role.slug == "agent")).one().id
    form["roles-shown"] = [r for r in form["roles-shown"] if r != str(agent_id)]
    form.pop(f"role-{agent_id}")
    response = client.post(
        "/admin/roles", data={**form, "csrf_token": csrf_from(client, "/admin/roles")}
    )
    assert response.status_code == 302
    assert before and _role_codes(app, "agent") == before


def test_reset_password_cannot_grant_rights_the_actor_lacks(app, client, factory, world):
    """An administrator cannot reset the password of anyone holding rights they lack."""
    from app.accounts.service import set_role_permissions
    from app.database import begin_write

    admin = factory.user("administrator", email="admin@example.test")
    manager = factory.user("manager", email="manager@example.test")
    with app.app_context():
        begin_write()
        role = db.session.scalars(select(Role).where(Role.slug == "manager")).one()
        set_role_permissions(role, role.permission_codes | {"roles.manage"})
        db.session.commit()
    login(client, admin.email)
    assert client.get(f"/admin/users/{manager.id}/password").status_code == 403
