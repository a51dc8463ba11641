"""People screens (issue [07]): add, edit, find, deactivate and reactivate people, learner
profiles, others' working hours, and who may give which role. Real HTTP through the test
client; the database is read back to prove what changed and what did not."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from sqlalchemy import func, select

from app.accounts.models import (
    DateOverride,
    Group,
    LearnerProfile,
    Role,
    TimeOff,
    User,
    WorkingHoursRule,
    group_members,
)
from app.accounts.passwords import INVITE_KIND
from app.accounts.service import set_role_permissions
from app.bookings.models import AvailabilitySource, Booking, BookingType, Hold, Status
from app.database import begin_write, utcnow
from app.extensions import db
from app.outbox import OutboxMessage
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import PASSWORD, at, csrf_from, login

# --- helpers ---------------------------------------------------------------------------


def _person(app, email: str) -> dict | None:
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one_or_none()
        if user is None:
            return None
        groups = sorted(
            db.session.scalars(
                select(Group.name)
                .join(group_members, group_members.c.group_id == Group.id)
                .where(group_members.c.user_id == user.id)
            )
        )
        return {
            "id": user.id,
            "name": user.name,
            "role": user.role.slug,
            "timezone": user.timezone,
            "active": user.active,
            "password": user.password_hash is not None,
            "session_token": user.session_token,
            "groups": groups,
        }


def _count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def _group(app, name: str) -> int:
    with app.app_context():
        begin_write()
        group = Group(slug=name.lower().replace(" ", "-"), name=name)
        db.session.add(group)
        db.session.commit()
        return group.id


def _invitations(app) -> list[dict]:
    with app.app_context():
        return [
            m.payload
            for m in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == INVITE_KIND)
            )
        ]


def _post(client, url: str, data: dict, page: str | None = None):
    token = csrf_from(client, page or url)
    return client.post(url, data={**data, "csrf_token": token})


@pytest.fixture
def owner(factory):
    return factory.user("owner", email="owner@example.test", name="Olive Owner")


@pytest.fixture
def admin(factory):
    return factory.user("administrator", email="admin@example.test", name="Ada Admin")


# --- add -------------------------------------------------------------------------------


def test_owner_adds_a_person_with_groups_and_an_invitation(app, client, owner):
    """The new person has the chosen role, zone and groups, no password, and an invite row."""
    reviewers = _group(app, "Reviewers")
    _group(app, "Other group")
    login(client, owner.email)
    page = client.get("/admin/people/new").get_data(as_text=True)
    assert re.search(r'name="invite" value="y" checked', page)  # invitation ticked by default
    response = _post(
        client,
        "/admin/people/new",
        {
            "name": "Amara Agent",
            "email": "Amara@Example.test",
            "role": "agent",
            "timezone": "America/New_York",
            "groups": [str(reviewers)],
            "active": "y",
            "invite": "y",
        },
    )
    assert response.status_code == 303
    made = _person(app, "amara@example.test")
    assert response.headers["Location"] == f"/admin/people/{made['id']}"
    assert made | {"session_token": None} == {
        "id": made["id"],
        "name": "Amara Agent",
        "role": "agent",
        "timezone": "America/New_York",
        "active": True,
        "password": False,
        "session_token": None,
        "groups": ["Reviewers"],
    }
    assert _invitations(app) == [{"user_id": made["id"], "invited_by_id": owner.id}]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Olive Owner added Amara Agent" in page  # who did what, in the flash
    assert "Resend invitation" in page


def test_adding_refuses_bad_input_and_writes_nothing(app, client, owner, factory):
    """Duplicate email (any case), bad email, unknown zone, unknown role: 400, clear message."""
    factory.user("agent", email="taken@example.test")
    login(client, owner.email)
    good = {"name": "N", "email": "new@example.test", "role": "agent", "timezone": "Europe/London"}
    cases = [
        ({"email": "TAKEN@example.test"}, "already uses the email taken@example.test"),
        ({"email": "not-an-email"}, "not a valid email address"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"role": "wizard"}, "Unknown role"),
        ({"groups": ["999999"]}, "Unknown group"),
    ]
    before = db_state(app)
    for change, message in cases:
        response = _post(client, "/admin/people/new", {**good, **change}, "/admin/people/new")
        assert response.status_code == 400, change
        assert message in response.get_data(as_text=True), change
    assert changed_tables(before, db_state(app)) == []


# --- edit ------------------------------------------------------------------------------


def test_edit_changes_details_and_groups(app, client, owner, factory):
    """Name, email, role, zone and groups are saved; the flash says what changed."""
    first, second = _group(app, "First"), _group(app, "Second")
    agent = factory.user("agent", email="amara@example.test", name="Amara")
    login(client, owner.email)
    url = f"/admin/people/{agent.id}"
    client.post(url, data={})  # no token: refused, nothing changes
    response = _post(
        client,
        url,
        {
            "name": "Amara Okafor",
            "email": "amara.okafor@example.test",
            "role": "manager",
            "timezone": "Asia/Tokyo",
            "groups": [str(first), str(second)],
        },
    )
    assert response.status_code == 303
    after = _person(app, "amara.okafor@example.test")
    assert (after["name"], after["role"], after["timezone"], after["groups"]) == (
        "Amara Okafor",
        "manager",
        "Asia/Tokyo",
        ["First", "Second"],
    )
    page = client.get(url).get_data(as_text=True)
    assert "time zone Europe/London → Asia/Tokyo" in page
    unticked = {"name": "Amara Okafor", "email": "amara.okafor@example.test", "role": "manager"}
    response = _post(client, url, {**unticked, "timezone": "Asia/Tokyo"})
    assert response.status_code == 303
    assert _person(app, "amara.okafor@example.test")["groups"] == []  # all unticked


def test_edit_refuses_a_duplicate_email_and_keeps_the_old_one(app, client, owner, factory):
    factory.user("agent", email="bo@example.test")
    agent = factory.user("agent", email="amara@example.test", name="Amara")
    login(client, owner.email)
    before = db_state(app)
    response = _post(
        client,
        f"/admin/people/{agent.id}",
        {"name": "Amara", "email": "BO@example.test", "role": "agent", "timezone": "Europe/London"},
    )
    assert response.status_code == 400
    assert "already uses the email bo@example.test" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_learner_profile_links_with_pickers(app, client, owner, factory):
    """A learner's agent, mentor, assessor and employer are saved on their page; links to the
    wrong kind of person are refused; the picker lists only who may fill the part."""
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    agent = factory.user("agent", email="amara@example.test", name="Amara Agent")
    assessor = factory.user("manager", email="asa@example.test", name="Asa Assessor")
    boss = factory.user("employer", email="em@example.test", name="Emma Employer")
    other_learner = factory.user("learner", email="lou@example.test", name="Lou Learner")
    login(client, owner.email)
    url = f"/admin/people/{learner.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Learner profile" in page
    assert '<select id="p-assigned_agent_id" name="assigned_agent_id"' in page  # no-JS picker
    assert "/admin/people/search?role=staff&amp;name=assigned_agent_id" in page

    found = client.get(
        "/admin/people/search?q=a&role=staff&name=assigned_agent_id", headers={"HX-Request": "1"}
    ).get_data(as_text=True)
    assert "Amara Agent" in found and "Asa Assessor" in found
    assert "Emma Employer" not in found and "Lou Learner" not in found
    mentors = client.get("/admin/people/search?q=emma&role=employer,staff&name=mentor_id")
    assert "Emma Employer" in mentors.get_data(as_text=True)

    form = {
        "name": "Lee Learner",
        "email": "lee@example.test",
        "role": "learner",
        "timezone": "Europe/London",
        "learner-profile": "1",
        "assigned_agent_id": str(agent.id),
        "mentor_id": str(boss.id),
        "assessor_id": str(assessor.id),
        "employer_id": str(boss.id),
    }
    assert _post(client, url, form).status_code == 303
    with app.app_context():
        profile = db.session.get(LearnerProfile, learner.id)
        assert (
            profile.assigned_agent_id,
            profile.workplace_mentor_id,
            profile.assessor_id,
            profile.employer_id,
        ) == (agent.id, boss.id, assessor.id, boss.id)
    page = client.get(url).get_data(as_text=True)
    assert re.search(rf'<option value="{agent.id}" selected>Amara Agent', page)

    before = db_state(app)
    for key, bad, message in [
        ("assigned_agent_id", boss.id, "must be a member of staff"),
        ("mentor_id", other_learner.id, "must be an employer or a member of staff"),
        ("assessor_id", 10**12, "Unknown assessor"),
        ("employer_id", "abc", "must be a person"),
    ]:
        response = _post(client, url, {**form, key: str(bad)})
        assert response.status_code == 400, key
        assert message in response.get_data(as_text=True), key
    assert changed_tables(before, db_state(app)) == []


def test_only_learners_have_a_learner_profile(app, client, owner, factory):
    agent = factory.user("agent", email="amara@example.test")
    boss = factory.user("employer", email="em@example.test")
    login(client, owner.email)
    url = f"/admin/people/{agent.id}"
    assert "Learner profile" not in client.get(url).get_data(as_text=True)
    form = {
        "name": "Amara",
        "email": agent.email,
        "role": "agent",
        "timezone": "Europe/London",
        "learner-profile": "1",
        "mentor_id": str(boss.id),
    }
    response = _post(client, url, form)
    assert response.status_code == 400
    assert "Only learners" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(LearnerProfile, agent.id) is None


# --- list, search, filters, paging -----------------------------------------------------


def _bulk_people(app, count: int, role: str = "agent", prefix: str = "bulk") -> None:
    from app.accounts.people import import_people, parse_people_csv

    rows = "".join(f"{prefix}{n:03}@example.test,{prefix} {n:03},{role},,\n" for n in range(count))
    with app.app_context():
        begin_write()
        import_people(None, parse_people_csv("email,name,role,timezone,groups\n" + rows))
        db.session.commit()


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/admin/people/\d+">([^<]+)</a></td>', html)


def test_list_searches_filters_and_pages(app, client, owner, factory):
    """50 a page; search by name or email; role and group filters; HTMX gets the fragment."""
    _bulk_people(app, 60)
    team = _group(app, "Team A")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    with app.app_context():
        begin_write()
        db.session.execute(group_members.insert(), [{"group_id": team, "user_id": learner.id}])
        db.session.commit()
    login(client, owner.email)

    first = client.get("/admin/people").get_data(as_text=True)
    assert len(_names(first)) == 50 and "62 people, page 1 of 2" in first
    second = client.get("/admin/people?page=2").get_data(as_text=True)
    assert len(_names(second)) == 12
    assert not set(_names(first)) & set(_names(second))

    assert _names(client.get("/admin/people?q=bulk 05").get_data(as_text=True)) == [
        f"bulk 05{n}" for n in range(10)
    ]
    by_email = client.get("/admin/people?q=LEE@EXAMPLE").get_data(as_text=True)
    assert _names(by_email) == ["Lee Learner"]
    # LIKE's wildcards are taken as typed: "%" and "_" match nobody here, not everybody.
    assert _names(client.get("/admin/people?q=%25").get_data(as_text=True)) == []
    assert _names(client.get("/admin/people?q=_").get_data(as_text=True)) == []
    assert _names(client.get("/admin/people?role=learner").get_data(as_text=True)) == [
        "Lee Learner"
    ]
    assert _names(client.get(f"/admin/people?group={team}").get_data(as_text=True)) == [
        "Lee Learner"
    ]
    assert client.get("/admin/people?group=abc").status_code == 400
    assert _names(client.get("/admin/people?group=1000000000000").get_data(as_text=True)) == []

    fragment = client.get("/admin/people?q=lee", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="people-results">') and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"]
    assert _names(html) == ["Lee Learner"]

    empty = client.get("/admin/people?q=nobody-like-this").get_data(as_text=True)
    assert "No one matches these filters" in empty


def test_users_link_moves_to_people(app, client, owner):
    login(client, owner.email)
    response = client.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/people"
    nav = client.get("/admin/people").get_data(as_text=True)
    assert '<a href="/admin/people" aria-current="page">People</a>' in nav


# --- deactivate and reactivate ---------------------------------------------------------


def _group_type(app, factory, member) -> int:
    """A booking type drawing availability from a group holding only ``member``."""
    group = _group(app, "Reviewers")
    with app.app_context():
        begin_write()
        db.session.execute(group_members.insert(), [{"group_id": group, "user_id": member.id}])
        db.session.commit()
    kind = factory.booking_type(
        name="Review",
        availability_source=AvailabilitySource.GROUP,
        availability_group_id=group,
        requires_approval=True,
    )
    return kind.id


def _slots(app, type_id: int) -> int:
    from app.bookings.availability import slots_for

    with app.app_context():
        kind = db.session.get(BookingType, type_id)
        start = utcnow() + timedelta(days=7)
        return len(slots_for(kind, start, start + timedelta(days=7)))


def test_deactivate_signs_out_offers_no_slots_and_keeps_bookings(app, client, owner, factory):
    """The confirm step lists upcoming bookings with a reassign link; afterwards the person
    cannot sign in, their session is dead, they offer no slots, their booking stays."""
    agent = factory.user("agent", email="amara@example.test", name="Amara")
    type_id = _group_type(app, factory, agent)
    with app.app_context():
        kind = db.session.get(BookingType, type_id)
    booking = factory.booking(None, kind, at(3, 10), [agent])
    assert _slots(app, type_id) > 0

    theirs = app.test_client()
    login(theirs, agent.email)
    login(client, owner.email)
    url = f"/admin/people/{agent.id}/deactivate"
    confirm = client.get(url).get_data(as_text=True)
    assert f"/capacity/{booking.id}/reassign" in confirm
    assert booking.title in confirm
    assert _person(app, agent.email)["active"]  # a GET changes nothing

    response = _post(client, url, {})
    assert response.status_code == 303
    assert not _person(app, agent.email)["active"]
    done = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Olive Owner deactivated Amara: they can no longer sign in" in done
    assert "Their upcoming booking was kept." in done

    assert theirs.get("/bookings").status_code == 302  # their open session has ended
    refused = app.test_client()
    token = csrf_from(refused, "/login")
    answer = refused.post(
        "/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 401
    assert _slots(app, type_id) == 0
    with app.app_context():
        kept = db.session.get(Booking, booking.id)
        assert kept.status == Status.PROVISIONAL
        assert [
            h.active for h in db.session.scalars(select(Hold).where(Hold.booking_id == booking.id))
        ] == [True]

    # Reactivate: they sign in again and offer slots again.
    assert (
        _post(
            client, f"/admin/people/{agent.id}/reactivate", {}, f"/admin/people/{agent.id}"
        ).status_code
        == 303
    )
    assert _person(app, agent.email)["active"]
    login(app.test_client(), agent.email)
    assert _slots(app, type_id) > 0


def test_deactivated_people_are_listed_under_their_status(app, client, owner, factory):
    agent = factory.user("agent", email="amara@example.test", name="Amara")
    login(client, owner.email)
    _post(client, f"/admin/people/{agent.id}/deactivate", {})
    assert "Amara" not in _names(client.get("/admin/people").get_data(as_text=True))
    assert _names(client.get("/admin/people?status=inactive").get_data(as_text=True)) == ["Amara"]


# --- who may give which role -------------------------------------------------------------


def test_administrator_cannot_make_or_edit_an_owner(app, client, owner, admin, factory):
    """The owner role is not offered to an administrator; forcing it is refused; an owner's
    page is read-only for them and every change to the owner is refused."""
    agent = factory.user("agent", email="amara@example.test", name="Amara")
    login(client, admin.email)
    new_page = client.get("/admin/people/new").get_data(as_text=True)
    assert 'value="administrator"' in new_page and 'value="owner"' not in new_page
    before = db_state(app)
    response = _post(
        client,
        "/admin/people/new",
        {"name": "Sneaky", "email": "sneaky@example.test", "role": "owner", "timezone": "UTC"},
    )
    assert response.status_code == 403
    assert "cannot give the role Owner" in response.get_data(as_text=True)
    url = f"/admin/people/{agent.id}"
    response = _post(
        client, url, {"name": "Amara", "email": agent.email, "role": "owner", "timezone": "UTC"}
    )
    assert response.status_code == 403
    assert changed_tables(before, db_state(app)) == []

    owner_page = client.get(f"/admin/people/{owner.id}").get_data(as_text=True)
    assert "You cannot change Olive Owner" in owner_page and 'name="email"' not in owner_page
    for path, data in [
        ("", {"name": "X", "email": owner.email, "role": "agent", "timezone": "UTC"}),
        ("/deactivate", {}),
        ("/availability/week", {"d0_start1": "09:00", "d0_end1": "10:00"}),
    ]:
        response = _post(client, f"/admin/people/{owner.id}{path}", data, "/admin/people")
        assert response.status_code == 403, path
    assert client.get(f"/admin/people/{owner.id}/availability").status_code == 403
    assert changed_tables(before, db_state(app)) == []


def test_manager_given_people_manage_cannot_give_higher_roles(app, client, factory):
    """The owner gives managers people.manage: a manager adds an agent, but cannot give the
    owner or administrator role, nor edit an administrator."""
    from app.accounts.permissions import STAFF, Perm

    with app.app_context():
        begin_write()
        manager_role = db.session.scalars(select(Role).where(Role.slug == "manager")).one()
        set_role_permissions(manager_role, {p.value for p in (*STAFF, Perm.PEOPLE_MANAGE)})
        db.session.commit()
    manager = factory.user("manager", email="mo@example.test", name="Mo Manager")
    admin = factory.user("administrator", email="admin@example.test")
    login(client, manager.email)
    page = client.get("/admin/people/new").get_data(as_text=True)
    assert 'value="agent"' in page and 'value="owner"' not in page
    assert 'value="administrator"' not in page
    good = {"name": "Amara", "email": "amara@example.test", "role": "agent", "timezone": "UTC"}
    assert _post(client, "/admin/people/new", good).status_code == 303
    before = db_state(app)
    for role in ("owner", "administrator"):
        response = _post(
            client, "/admin/people/new", {**good, "email": "x@example.test", "role": role}
        )
        assert response.status_code == 403, role
    made = _person(app, "amara@example.test")
    response = _post(client, f"/admin/people/{made['id']}", {**good, "role": "owner"})
    assert response.status_code == 403
    response = _post(client, f"/admin/people/{admin.id}/deactivate", {}, "/admin/people")
    assert response.status_code == 403
    assert changed_tables(before, db_state(app)) == []


def test_the_last_active_owner_cannot_be_demoted_or_deactivated(app, client, owner, factory):
    """Alone, the owner keeps their role and stays active (the screen says why); once there
    is a second owner, the first may be demoted."""
    login(client, owner.email)
    url = f"/admin/people/{owner.id}"
    before = db_state(app)
    response = _post(
        client,
        url,
        {"name": "Olive Owner", "email": owner.email, "role": "administrator", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "last active owner" in response.get_data(as_text=True)
    confirm = client.get(f"{url}/deactivate").get_data(as_text=True)
    assert "last active owner and cannot be deactivated" in confirm
    assert "Deactivate Olive Owner</button>" not in confirm
    response = _post(client, f"{url}/deactivate", {}, url)
    assert response.status_code == 400
    assert "last active owner" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []

    # A second owner who is deactivated does not count.
    second = factory.user("owner", email="second@example.test", name="Second Owner")
    assert _post(client, f"/admin/people/{second.id}/deactivate", {}, url).status_code == 303
    response = _post(
        client, url, {"name": "Olive", "email": owner.email, "role": "agent", "timezone": "UTC"}
    )
    assert response.status_code == 400
    assert _post(client, f"/admin/people/{second.id}/reactivate", {}, url).status_code == 303
    response = _post(
        client,
        f"/admin/people/{owner.id}",
        {"name": "Olive", "email": owner.email, "role": "administrator", "timezone": "UTC"},
    )
    assert response.status_code == 303
    assert _person(app, owner.email)["role"] == "administrator"


def test_nobody_deactivates_themself(app, client, owner, admin):
    login(client, admin.email)
    response = _post(client, f"/admin/people/{admin.id}/deactivate", {}, "/admin/people")
    assert response.status_code == 400
    assert "cannot deactivate yourself" in response.get_data(as_text=True)
    assert _person(app, admin.email)["active"]


# --- invitations -----------------------------------------------------------------------


def test_resend_invitation_only_without_a_password(app, client, owner, factory):
    login(client, owner.email)
    _post(
        client,
        "/admin/people/new",
        {
            "name": "Ina",
            "email": "ina@example.test",
            "role": "agent",
            "timezone": "UTC",
            "active": "y",
        },
    )
    ina = _person(app, "ina@example.test")
    assert _invitations(app) == []  # invitation unticked: none sent
    page = f"/admin/people/{ina['id']}"
    assert _post(client, f"{page}/invite", {}, page).status_code == 303
    assert _invitations(app) == [{"user_id": ina["id"], "invited_by_id": owner.id}]
    agent = factory.user("agent", email="has-password@example.test")  # has a password
    response = _post(client, f"/admin/people/{agent.id}/invite", {}, page)
    assert response.status_code == 400
    assert "already set a password" in response.get_data(as_text=True)
    assert len(_invitations(app)) == 1


# --- others' working hours ---------------------------------------------------------------


def test_manager_edits_someone_elses_hours_with_the_availability_screen(
    app, client, admin, factory
):
    """The same screen as /me/availability, for a chosen person, in their zone."""
    agent = factory.user("agent", email="amara@example.test", name="Amara", timezone="Asia/Tokyo")
    login(client, admin.email)
    url = f"/admin/people/{agent.id}/availability"
    page = client.get(url).get_data(as_text=True)
    assert "Availability of Amara" in page and "Asia/Tokyo" in page
    assert f'action="{url}/week"' in page
    response = _post(client, f"{url}/week", {"d0_start1": "09:00", "d0_end1": "13:00"})
    assert response.status_code == 303 and response.headers["Location"] == url
    day = (utcnow() + timedelta(days=30)).date()
    _post(client, f"{url}/overrides", {"day": day.isoformat(), "start": "", "end": ""})
    _post(client, f"{url}/time-off", {"start_day": day.isoformat(), "reason": "Leave"})
    with app.app_context():
        rules = db.session.scalars(select(WorkingHoursRule)).all()
        assert [(r.user_id, r.weekday, r.start_time, r.end_time) for r in rules] == [
            (agent.id, 0, time(9), time(13))
        ]
        assert [o.user_id for o in db.session.scalars(select(DateOverride))] == [agent.id]
        off = db.session.scalars(select(TimeOff)).one()
        assert off.user_id == agent.id
        # Whole days in the person's zone: Tokyo midnight is 15:00 UTC the day before.
        assert off.starts_at.hour == 15
    # Another person's time-off id through this person's URL: not found, nothing removed.
    other = factory.user("agent", email="bo@example.test")
    other_url = f"/admin/people/{other.id}/availability"
    response = _post(client, f"{other_url}/time-off/{off.id}/delete", {}, other_url)
    assert response.status_code == 400
    # An id no row can have (beyond PostgreSQL's integer) is not an address at all (app/guard.py).
    response = _post(client, f"{other_url}/time-off/{10**12}/delete", {}, other_url)
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(TimeOff, off.id) is not None
    # The admin's own screen is untouched by all this.
    own = client.get("/me/availability").get_data(as_text=True)
    assert "My availability" in own and 'action="/me/availability/week"' in own


# --- IDOR ------------------------------------------------------------------------------


@pytest.mark.parametrize("person_id", [987654, 10**12])
def test_unknown_person_ids_are_404(app, client, owner, person_id):
    login(client, owner.email)
    token = csrf_from(client, "/admin/people")
    before = db_state(app)
    for path in ("", "/deactivate", "/availability"):
        assert client.get(f"/admin/people/{person_id}{path}").status_code == 404, path
    for path in ("", "/deactivate", "/reactivate", "/invite", "/availability/week"):
        response = client.post(f"/admin/people/{person_id}{path}", data={"csrf_token": token})
        assert response.status_code == 404, path
    assert changed_tables(before, db_state(app)) == []


def test_people_screens_need_people_manage(app, client, factory):
    """An agent gets 403 on the list and on a colleague's page."""
    agent = factory.user("agent", email="amara@example.test")
    other = factory.user("agent", email="bo@example.test")
    login(client, agent.email)
    for url in ("/admin/people", f"/admin/people/{other.id}", "/admin/people/search?q=b"):
        assert client.get(url).status_code == 403, url
    assert "/admin/people" not in client.get("/bookings").get_data(as_text=True)


def test_a_deactivated_person_chosen_by_name_offers_no_slots(app, client, owner, factory):
    """The staff form's path (people named, not the type's source): slots and the day
    preview's quick picks are empty once they are deactivated."""
    from app.bookings.availability import slots_for
    from app.bookings.preview import day_preview

    agent = factory.user("agent", email="amara@example.test", name="Amara")
    kind = factory.booking_type(name="Observation")
    start = utcnow() + timedelta(days=7)

    def offered():
        with app.app_context():
            person = db.session.get(User, agent.id)
            chosen = db.session.get(BookingType, kind.id)
            slots = slots_for(chosen, start, start + timedelta(days=7), people=[person])
            days = [start.date() + timedelta(days=n) for n in range(7)]
            viewer = db.session.get(User, owner.id)
            picks = [day_preview(viewer, chosen, [person], d).quick_picks for d in days]
            return len(slots), sum(len(p) for p in picks)

    assert all(offered())
    login(client, owner.email)
    assert _post(client, f"/admin/people/{agent.id}/deactivate", {}).status_code == 303
    assert offered() == (0, 0)
