"""B6 groups screens: create, rename, members, delete; the system group stays; ids checked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import PLANNING_GROUP_SLUG, Group
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login


@pytest.fixture
def token(client, factory):
    admin = factory.user("administrator", email="admin@example.test", name="Adam Admin")
    login(client, admin.email)
    return csrf_from(client, "/admin/groups")


def _post(client, url: str, token: str, data: dict | None = None, **kwargs):
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def _group(app, group_id: int) -> tuple[str, list[str]] | None:
    with app.app_context():
        group = db.session.get(Group, group_id)
        found = (group.name, [m.email for m in group.members]) if group else None
        db.session.rollback()
    return found


def _create(client, token, name: str) -> int:
    response = _post(client, "/admin/groups", token, {"name": name})
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_create_rename_and_list_with_member_counts(app, client, factory, token):
    """A group is created, renamed, and listed with how many members it has."""
    group_id = _create(client, token, "  EPA   assessors ")
    assert _group(app, group_id) == ("EPA assessors", [])
    with app.app_context():
        assert db.session.get(Group, group_id).slug == "epa-assessors"
    response = _post(client, f"/admin/groups/{group_id}/rename", token, {"name": "End-point"})
    assert response.status_code == 303
    assert _group(app, group_id) == ("End-point", [])
    agent = factory.user("agent", email="ada@example.test")
    _post(client, f"/admin/groups/{group_id}/members", token, {"user_id": str(agent.id)})
    listing = client.get("/admin/groups").get_data(as_text=True)
    assert f'href="/admin/groups/{group_id}">End-point</a>' in listing
    assert "<td>1</td>" in listing


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Enter a name"), ("x" * 201, "at most 200"), ("Taken", "already exists")],
)
def test_bad_names_are_refused(app, client, token, name, message):
    """Empty, too long or duplicate names: 400 with the reason, nothing written."""
    taken = _create(client, token, "Taken")
    other = _create(client, token, "Other")
    before = db_state(app)
    response = _post(client, "/admin/groups", token, {"name": name})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    response = _post(client, f"/admin/groups/{other}/rename", token, {"name": name})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert _group(app, taken) == ("Taken", [])


def test_members_add_and_remove(app, client, factory, token):
    """Active staff are offered and added; removing takes them out; with HTMX the members
    panel comes back instead of a redirect."""
    ada = factory.user("agent", email="ada@example.test", name="Ada Agent")
    bea = factory.user("manager", email="bea@example.test", name="Bea Manager")
    learner = factory.user("learner", email="leo@example.test", name="Leo Learner")
    group_id = _create(client, token, "Assessors")
    page = client.get(f"/admin/groups/{group_id}").get_data(as_text=True)
    assert f'<option value="{ada.id}">' in page and f'<option value="{bea.id}">' in page
    assert "Leo Learner" not in page and f'<option value="{learner.id}">' not in page

    response = _post(client, f"/admin/groups/{group_id}/members", token, {"user_id": ada.id})
    assert response.status_code == 303
    response = _post(
        client,
        f"/admin/groups/{group_id}/members",
        token,
        {"user_id": bea.id},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    panel = response.get_data(as_text=True)
    assert 'id="group-members"' in panel
    assert "<html" not in panel and "Bea Manager added to Assessors." in panel
    assert _group(app, group_id) == ("Assessors", ["ada@example.test", "bea@example.test"])

    remove = f"/admin/groups/{group_id}/members/{ada.id}/remove"
    assert _post(client, remove, token).status_code == 303
    assert _group(app, group_id) == ("Assessors", ["bea@example.test"])


def test_members_must_be_active_staff_and_known(app, client, factory, token):
    """A learner, a deactivated agent, an unknown or huge id: 400 with the reason, nothing
    written."""
    from app.database import begin_write

    learner = factory.user("learner", name="Leo Learner")
    gone = factory.user("agent", name="Gone Agent")
    with app.app_context():
        begin_write()
        from app.accounts.models import User

        db.session.get(User, gone.id).active = False
        db.session.commit()
    group_id = _create(client, token, "Assessors")
    before = db_state(app)
    cases = {
        str(learner.id): "not staff",
        str(gone.id): "deactivated",
        "987654": "no user with id 987654",
        "99999999999999999999999": "Choose a person",
        "": "Choose a person",
        "abc": "Choose a person",
    }
    for user_id, message in cases.items():
        response = _post(client, f"/admin/groups/{group_id}/members", token, {"user_id": user_id})
        assert response.status_code == 400, user_id
        assert message in response.get_data(as_text=True), user_id
    assert changed_tables(before, db_state(app)) == []


def test_delete_with_confirm(app, client, token):
    """An unused group is deleted from its page (confirm then POST)."""
    group_id = _create(client, token, "Short-lived")
    page = client.get(f"/admin/groups/{group_id}").get_data(as_text=True)
    assert f'action="/admin/groups/{group_id}/delete"' in page and "Yes, delete" in page
    response = _post(client, f"/admin/groups/{group_id}/delete", token)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/groups"
    assert _group(app, group_id) is None


def test_system_group_cannot_be_deleted(app, client, factory, token):
    """The planning group shows no delete button and a forged delete is refused (400), the
    group and its members kept."""
    agent = factory.user("agent", email="ada@example.test")
    response = _post(client, "/admin/groups/planning", token)
    assert response.status_code == 303
    with app.app_context():
        planning = db.session.scalars(select(Group).where(Group.slug == PLANNING_GROUP_SLUG)).one()
        planning_id = planning.id
        assert planning.system and planning.name == "Planning Meeting Bookings"
        db.session.rollback()
    _post(client, f"/admin/groups/{planning_id}/members", token, {"user_id": agent.id})
    page = client.get(f"/admin/groups/{planning_id}").get_data(as_text=True)
    assert "/delete" not in page and "cannot be deleted" in page
    before = db_state(app)
    response = _post(client, f"/admin/groups/{planning_id}/delete", token)
    assert response.status_code == 400
    assert "cannot be deleted" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
    assert _group(app, planning_id) == ("Planning Meeting Bookings", ["ada@example.test"])
    # Creating it again is harmless: the same group is opened.
    response = _post(client, "/admin/groups/planning", token)
    assert response.headers["Location"] == f"/admin/groups/{planning_id}"


def test_naming_a_group_planning_meeting_bookings_makes_the_system_group(app, client, token):
    """On an install without it, the system group can also be made by its name."""
    group_id = _create(client, token, "Planning Meeting Bookings")
    with app.app_context():
        group = db.session.get(Group, group_id)
        assert group.slug == PLANNING_GROUP_SLUG and group.system
        db.session.rollback()
    assert "Create the Planning Meeting Bookings group" not in client.get("/admin/groups").get_data(
        as_text=True
    )


def test_unknown_or_huge_ids_are_404(app, client, factory, token):
    """IDOR: unknown group ids, and removing someone who is not a member, are a 404."""
    agent = factory.user("agent")
    group_id = _create(client, token, "Real")
    before = db_state(app)
    for bad in ("987654", "99999999999999999999999"):
        assert client.get(f"/admin/groups/{bad}").status_code == 404
        for path in ("rename", "members", "delete", f"members/{agent.id}/remove"):
            response = _post(client, f"/admin/groups/{bad}/{path}", token, {"name": "X"})
            assert response.status_code == 404, path
    remove = f"/admin/groups/{group_id}/members/{agent.id}/remove"
    assert _post(client, remove, token).status_code == 404
    assert (
        _post(client, f"/admin/groups/{group_id}/members/987654/remove", token).status_code == 404
    )
    assert changed_tables(before, db_state(app)) == []


def test_screens_need_people_manage(client, factory):
    """An agent is refused the groups screens."""
    agent = factory.user("agent")
    login(client, agent.email)
    assert client.get("/admin/groups").status_code == 403


def test_groups_service_refuses_wrong_member_types(app, factory):
    """The API passes raw JSON: member ids must be whole numbers in a list."""
    from app.accounts import groups
    from app.database import begin_write

    agent = factory.user("agent")
    with app.app_context():
        begin_write()
        group = groups.create_group("Typed")
        for bad in ("1,2", [str(agent.id)], [True], None, [1.5]):
            with pytest.raises(groups.GroupError):
                groups.set_members(group, bad)
        groups.set_members(group, [agent.id, agent.id])
        assert [m.id for m in group.members] == [agent.id]
        with pytest.raises(groups.GroupError):
            groups.create_group(42)
        db.session.rollback()
