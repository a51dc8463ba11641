"""B1 booking type screens: every field through the form, validation, deactivation, the live
"next free times" preview, and the type's defaults and "who may book" in real bookings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from app.accounts.models import Group, User
from app.bookings.models import Booking, BookingType
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.accounts.perm_booking_types import PREVIEW_QUERY, form_data
from tests.conftest import csrf_from, login
from tests.public.conftest import book_form, first_slot, set_settings


@pytest.fixture
def owner(factory):
    return factory.user("owner", email="owner@example.test", name="Olive Owner")


@pytest.fixture
def signed_in(client, owner):
    login(client, owner.email)
    return csrf_from(client, "/admin/booking-types/new")


def _group(app, name: str, members=()) -> int:
    from app.accounts import groups
    from app.database import begin_write

    with app.app_context():
        begin_write()
        group = groups.create_group(name)
        groups.set_members(group, [m.id for m in members])
        db.session.commit()
        return group.id


def _type(app, slug: str) -> dict:
    with app.app_context():
        kind = db.session.scalars(select(BookingType).where(BookingType.slug == slug)).one()
        values = {c.name: getattr(kind, c.name) for c in BookingType.__table__.columns}
        db.session.rollback()
    return values


def _post(client, url: str, token: str, data: dict):
    return client.post(url, data={**data, "csrf_token": token})


def test_create_with_every_field(app, client, factory, signed_in, teams_connection):
    """Every B1 field posted on the new-type form is stored as given."""
    agent = factory.user("agent", name="Ada Agent")
    group_id = _group(app, "Assessors", [agent])
    data = form_data(
        "EPA review",
        slug="epa-review",
        description="A review with your end-point assessor.",
        duration_minutes="90",
        buffer_before_minutes="15",
        buffer_after_minutes="20",
        location_modes=["remote", "teams"],
        default_location_mode="teams",
        location_detail="Dial-in 0800 000 000",
        face_to_face_detail="1 High Street, Leeds",
        remote_detail="https://meet.example/epa",
        requires_approval="y",
        bookable_by=["public", "learner"],
        availability_source="group",
        group=str(group_id),
        minimum_notice_minutes="120",
        earliest_day_public="3",
        earliest_day_staff="1",
        disabled_window_minutes="30",
        horizon_days="60",
        weekends_enabled="on",
        max_per_day="4",
        colour="#AA3366",
        planned_otj_minutes="50",
        complete_on_verified="y",
    )
    response = _post(client, "/admin/booking-types/new", signed_in, data)
    assert response.status_code == 303
    kind = _type(app, "epa-review")
    assert response.headers["Location"] == f"/admin/booking-types/{kind['id']}"
    assert {k: kind[k] for k in kind if k not in ("id", "slot_interval_minutes")} == {
        "slug": "epa-review",
        "name": "EPA review",
        "description": "A review with your end-point assessor.",
        "duration_minutes": 90,
        "buffer_before_minutes": 15,
        "buffer_after_minutes": 20,
        "location_modes": ["remote", "teams"],
        "default_location_mode": "teams",
        "location_detail": "Dial-in 0800 000 000",
        "face_to_face_detail": "1 High Street, Leeds",
        "remote_detail": "https://meet.example/epa",
        "requires_approval": True,
        "bookable_by": ["public", "learner"],
        "availability_source": "group",
        "availability_group_id": group_id,
        "minimum_notice_minutes": 120,
        "earliest_day_public": 3,
        "earliest_day_staff": 1,
        "disabled_window_minutes": 30,
        "horizon_days": 60,
        "weekends_enabled": True,
        "max_per_day": 4,
        "colour": "#aa3366",
        "active": True,
        "planned_otj_minutes": 50,
        "complete_on_verified": True,
    }
    listing = client.get("/admin/booking-types").get_data(as_text=True)
    assert "EPA review" in listing and "90 min" in listing and "Group: Assessors" in listing
    assert "The public, Learners" in listing


def test_slug_comes_from_the_name_when_left_empty(app, client, signed_in):
    """An empty slug is made from the name, and a taken one gets a number."""
    for _ in range(2):
        response = _post(client, "/admin/booking-types/new", signed_in, form_data("Café visit"))
        assert response.status_code == 303
    assert _type(app, "cafe-visit")["name"] == "Café visit"
    assert _type(app, "cafe-visit-2")["name"] == "Café visit"


def test_edit_changes_every_field_and_blank_window_means_default(app, client, factory, signed_in):
    """Editing stores new values; emptied window boxes go back to the organisation default."""
    kind = factory.booking_type(
        slug="review",
        name="Review",
        minimum_notice_minutes=60,
        weekends_enabled=True,
        max_per_day=2,
        location_modes=["face_to_face"],
    )
    data = form_data(
        "Progress review",
        slug="progress-review",
        description="Every twelve weeks.",
        duration_minutes="30",
        location_modes=["face_to_face", "remote"],
        default_location_mode="remote",
        location_detail="https://meet.example/review",
        bookable_by=["staff", "learner"],
        availability_source="assigned_agent",
        weekends_enabled="off",
        horizon_days="90",
        colour="#123456",
    )
    response = _post(client, f"/admin/booking-types/{kind.id}", signed_in, data)
    assert response.status_code == 303
    saved = _type(app, "progress-review")
    assert saved["id"] == kind.id
    assert saved["name"] == "Progress review" and saved["description"] == "Every twelve weeks."
    assert saved["duration_minutes"] == 30
    assert saved["default_location_mode"] == "remote"
    assert saved["location_detail"] == "https://meet.example/review"
    assert saved["bookable_by"] == ["learner", "staff"]
    assert saved["availability_source"] == "assigned_agent"
    assert saved["minimum_notice_minutes"] is None and saved["max_per_day"] is None
    assert saved["weekends_enabled"] is False and saved["horizon_days"] == 90
    assert saved["colour"] == "#123456"
    page = client.get(f"/admin/booking-types/{kind.id}").get_data(as_text=True)
    assert 'value="progress-review"' in page
    assert re.search(r'<option value="off"\s+selected>', page)


BAD_INPUTS = [
    ({"name": "  "}, "name", "Enter a name"),
    ({"name": "x" * 201}, "name", "at most 200"),
    ({"slug": "Not A Slug"}, "slug", "lowercase letters"),
    ({"slug": "taken"}, "slug", "already uses the slug"),
    ({"duration_minutes": "sixty"}, "duration_minutes", "whole number"),
    ({"duration_minutes": "4"}, "duration_minutes", "between 5 and 1440"),
    ({"duration_minutes": "1441"}, "duration_minutes", "between 5 and 1440"),
    ({"duration_minutes": ""}, "duration_minutes", "Duration is required"),
    ({"buffer_after_minutes": "481"}, "buffer_after_minutes", "between 0 and 480"),
    ({"buffer_before_minutes": "-1"}, "buffer_before_minutes", "between 0 and 480"),
    ({"location_modes": []}, "location_modes", "choose at least one"),
    ({"location_modes": ["carrier-pigeon"]}, "location_modes", "not one of"),
    (
        {"location_modes": ["face_to_face"], "default_location_mode": "teams"},
        "default_location_mode",
        "must be one of the allowed modes",
    ),
    ({"location_detail": "x" * 501}, "location_detail", "at most 500"),
    ({"bookable_by": []}, "bookable_by", "choose at least one"),
    ({"bookable_by": ["robots"]}, "bookable_by", "not one of"),
    ({"availability_source": "magic"}, "availability_source", "must be one of"),
    ({"availability_source": "group", "group": ""}, "group", "Choose the group"),
    ({"availability_source": "group", "group": "987654"}, "group", "no group with id"),
    ({"minimum_notice_minutes": "-5"}, "minimum_notice_minutes", "between 0 and"),
    ({"earliest_day_public": "366"}, "earliest_day_public", "between 0 and 365"),
    ({"earliest_day_staff": "1.5"}, "earliest_day_staff", "whole number"),
    ({"disabled_window_minutes": "99999"}, "disabled_window_minutes", "between 0 and"),
    ({"horizon_days": "0"}, "horizon_days", "between 1 and"),
    ({"weekends_enabled": "sometimes"}, "weekends_enabled", "Weekends must be"),
    ({"max_per_day": "0"}, "max_per_day", "between 1 and 1000"),
    ({"colour": "red"}, "colour", "#2457a7"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_INPUTS, ids=lambda v: str(v)[:40])
def test_bad_input_is_refused_with_a_message_and_nothing_written(
    app, client, factory, signed_in, changes, field, message
):
    """Each bad field: 400, its message next to the field, not a row changed (new and edit)."""
    factory.booking_type(slug="taken", name="Taken")
    kind = factory.booking_type(slug="existing", name="Existing")
    for url in ("/admin/booking-types/new", f"/admin/booking-types/{kind.id}"):
        before = db_state(app)
        data = form_data("Fine name", **({"slug": "existing"} if "edit" in url else {}))
        response = _post(client, url, signed_in, {**data, **changes})
        page = response.get_data(as_text=True)
        assert response.status_code == 400, url
        assert message in page.replace("&#39;", "'").replace("&#34;", '"')
        assert f'id="bt-{field}-error"' in page or f'href="#bt-{field}"' in page
        assert changed_tables(before, db_state(app)) == []


def test_deactivate_and_reactivate(app, client, factory, signed_in):
    """A deactivated type leaves the staff form and the landing page; reactivating brings it
    back. Its bookings stay."""
    agent = factory.user("agent")
    kind = factory.booking_type(slug="visit", name="Site visit", bookable_by=["staff", "public"])
    booking = factory.booking(agent, kind, datetime.now(UTC) + timedelta(days=3), [agent])
    set_settings(app, public_scheduling_enabled=True)
    edit_page = client.get(f"/admin/booking-types/{kind.id}").get_data(as_text=True)
    assert f'action="/admin/booking-types/{kind.id}/deactivate"' in edit_page

    response = _post(client, f"/admin/booking-types/{kind.id}/deactivate", signed_in, {})
    assert response.status_code == 303
    assert "is deactivated" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _type(app, "visit")["active"] is False
    assert "Site visit" not in client.get("/bookings/new").get_data(as_text=True)
    assert "Site visit" not in client.get("/book").get_data(as_text=True)
    listing = client.get("/admin/booking-types").get_data(as_text=True)
    assert "Site visit" in listing and "Inactive" in listing
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == "confirmed"

    response = _post(client, f"/admin/booking-types/{kind.id}/reactivate", signed_in, {})
    assert response.status_code == 303
    assert _type(app, "visit")["active"] is True
    assert "Site visit" in client.get("/bookings/new").get_data(as_text=True)


def test_unknown_or_huge_ids_are_404(app, client, signed_in):
    """IDOR: ids that do not exist, however large, are a 404 and write nothing."""
    before = db_state(app)
    for type_id in ("987654", "99999999999999999999999"):
        base = f"/admin/booking-types/{type_id}"
        assert client.get(base).status_code == 404
        assert client.get(f"{base}/preview?{PREVIEW_QUERY}").status_code == 404
        assert _post(client, base, signed_in, form_data("X")).status_code == 404
        for action in ("deactivate", "reactivate"):
            assert _post(client, f"{base}/{action}", signed_in, {}).status_code == 404
    assert changed_tables(before, db_state(app)) == []


def test_screens_need_booking_types_manage(client, factory):
    """An agent (no booking_types.manage) is refused every screen."""
    agent = factory.user("agent")
    kind = factory.booking_type()
    login(client, agent.email)
    for url in (
        "/admin/booking-types",
        "/admin/booking-types/new",
        f"/admin/booking-types/{kind.id}",
    ):
        assert client.get(url).status_code == 403


# --- the live preview ------------------------------------------------------------------


def _slot_times(html: str) -> list[str]:
    return re.findall(r'<time datetime="([^"]+)">', html)


def _preview(client, type_id: int, **changes) -> str:
    from urllib.parse import urlencode

    values = {k: v for k, v in form_data("ignored", **changes).items() if k != "name"}
    response = client.get(
        f"/admin/booking-types/{type_id}/preview?{urlencode(values, doseq=True)}",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_preview_shows_free_times_that_follow_duration_and_group(app, client, factory, signed_in):
    """The preview lists the next free times for the unsaved settings: a longer duration
    moves them, an empty group gives none with the reason, and nothing is saved."""
    agent = factory.user("agent", name="Ada Agent")
    busy_group = _group(app, "Assessors", [agent])
    empty_group = _group(app, "Nobody yet")
    kind = factory.booking_type(slug="obs", name="Observation", duration_minutes=60)
    before = db_state(app)
    group_fields = {"availability_source": "group", "group": str(busy_group)}

    hour = _preview(client, kind.id, duration_minutes="60", **group_fields)
    half = _preview(client, kind.id, duration_minutes="30", **group_fields)
    assert "Ada Agent" in hour and ("GMT" in hour or "BST" in hour)
    assert len(_slot_times(hour)) == 5 and len(_slot_times(half)) == 5
    assert _slot_times(hour) != _slot_times(half)
    # Some two of them are 30 minutes apart (the first two may straddle a night when the test
    # runs late in the working day).
    starts = [datetime.fromisoformat(t) for t in _slot_times(half)]
    assert timedelta(minutes=30) in {b - a for a, b in pairwise(starts)}
    assert "(Europe/London)" in hour

    empty = _preview(client, kind.id, availability_source="group", group=str(empty_group))
    assert _slot_times(empty) == []
    assert "No free times in the next 14 days" in empty
    assert "Nobody yet has no members yet" in empty

    invalid = _preview(client, kind.id, duration_minutes="2")
    assert "Fix the form to see free times" in invalid and "between 5 and 1440" in invalid

    assert changed_tables(before, db_state(app)) == []
    with app.app_context():
        assert db.session.get(BookingType, kind.id).duration_minutes == 60


def test_preview_names_missing_working_time(app, client, factory, signed_in):
    """When the group's people have no free time in the window, the preview says why."""
    agent = factory.user("agent", name="Ada Agent")
    group_id = _group(app, "Assessors", [agent])
    kind = factory.booking_type(slug="far", name="Far away")
    page = _preview(
        client,
        kind.id,
        availability_source="group",
        group=str(group_id),
        earliest_day_staff="30",
    )
    assert "No free times in the next 14 days" in page
    assert "earliest day for staff: 30 days ahead" in page


def test_new_form_preview_and_page_render(client, factory, signed_in):
    """The new-type page shows its preview; the preview URL works without HTMX too."""
    page = client.get("/admin/booking-types/new").get_data(as_text=True)
    assert 'hx-trigger="change delay:400ms"' in page and 'id="bt-preview"' in page
    assert "No free times in the next 14 days" in page  # no planning group on a fresh install
    response = client.get(f"/admin/booking-types/preview?{PREVIEW_QUERY}")
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)


# --- the type's defaults and "who may book" in real bookings ---------------------------


def _when(days: int = 3) -> dict:
    day = datetime.now(UTC).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return {"day": day.isoformat(), "start": "11:00"}


def test_staff_form_starts_from_the_types_location(app, client, factory, owner, signed_in):
    """The staff form opens on the type's default mode and detail, and a booking posted with
    no detail carries the type's address or link."""
    kind = factory.booking_type(
        slug="remote-review",
        name="Remote review",
        location_modes=["face_to_face", "remote"],
        default_location_mode="remote",
        location_detail="https://meet.example/room-7",
    )
    page = client.get(f"/bookings/new?booking_type={kind.id}").get_data(as_text=True)
    assert re.search(r'<option selected value="remote">|<option value="remote" selected>', page)
    assert 'value="https://meet.example/room-7"' in page
    data = {
        "booking_type": str(kind.id),
        "people": [str(owner.id)],
        "learner": "0",
        "location_mode": "remote",
        "location_detail": "",
        "description": "",
        **_when(),
    }
    response = _post(client, "/bookings/new", signed_in, data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert (booking.location_mode, booking.location_detail) == (
            "remote",
            "https://meet.example/room-7",
        )


def test_service_defaults_to_the_types_mode_and_detail(app, factory, teams_connection):
    """A booking made with no location (API, public page) meets as the type says; another
    mode does not inherit the default mode's address."""
    from app.bookings import service
    from app.database import begin_write

    agent = factory.user("agent")
    kind = factory.booking_type(
        location_modes=["face_to_face", "teams"],
        default_location_mode="face_to_face",
        location_detail="1 High Street",
    )
    with app.app_context():
        begin_write()
        person = db.session.get(User, agent.id)
        fresh = db.session.get(BookingType, kind.id)
        first = service.create_booking(None, fresh, datetime.now(UTC) + timedelta(days=2), [person])
        second = service.create_booking(
            None, fresh, datetime.now(UTC) + timedelta(days=3), [person], location_mode="teams"
        )
        assert (first.location_mode, first.location_detail) == ("face_to_face", "1 High Street")
        assert (second.location_mode, second.location_detail) == ("teams", "")
        db.session.rollback()


def test_each_mode_carries_its_own_address_or_link(app, factory):
    """A type offering face to face and remote hands each booking the detail of the mode it
    meets in (a visitor choosing remote gets the link, not the office's address); a mode
    with no detail of its own falls back to the type's detail only when it is the default."""
    from app.bookings import service
    from app.database import begin_write

    agent = factory.user("agent")
    kind = factory.booking_type(
        location_modes=["face_to_face", "remote"],
        default_location_mode="face_to_face",
        location_detail="Reception, 1 High Street",
        remote_detail="https://meet.example/desk",
    )
    with app.app_context():
        begin_write()
        person = db.session.get(User, agent.id)
        fresh = db.session.get(BookingType, kind.id)
        soon = datetime.now(UTC) + timedelta(days=2)
        remote = service.create_booking(None, fresh, soon, [person], location_mode="remote")
        local = service.create_booking(None, fresh, soon + timedelta(days=1), [person])
        assert (remote.location_mode, remote.location_detail) == (
            "remote",
            "https://meet.example/desk",
        )
        assert local.location_detail == "Reception, 1 High Street"
        fresh.face_to_face_detail = "2 Low Road"
        fresh.remote_detail = ""
        fresh.default_location_mode = "remote"
        later = soon + timedelta(days=2)
        moved = service.create_booking(None, fresh, later, [person], location_mode="face_to_face")
        assert moved.location_detail == "2 Low Road"
        # remote is now the default with no link of its own: the type's detail is its
        bare = service.create_booking(None, fresh, later + timedelta(days=1), [person])
        assert (bare.location_mode, bare.location_detail) == ("remote", "Reception, 1 High Street")
        db.session.rollback()


def test_staff_form_refuses_a_type_not_bookable_by_staff(app, client, factory, owner, signed_in):
    """A public-only type is not offered on the staff form; a tampered POST is refused (400)
    and writes nothing; the service refuses it to staff too."""
    from app.bookings import policy, service
    from app.database import begin_write

    public_only = factory.booking_type(slug="walk-in", name="Walk-in", bookable_by=["public"])
    page = client.get("/bookings/new").get_data(as_text=True)
    assert "Walk-in" not in page
    before = db_state(app)
    data = {
        "booking_type": str(public_only.id),
        "people": [str(owner.id)],
        "learner": "0",
        "location_mode": "face_to_face",
        "location_detail": "",
        "description": "",
        **_when(),
    }
    response = _post(client, "/bookings/new", signed_in, data)
    assert response.status_code in (400, 403)
    assert changed_tables(before, db_state(app)) == []
    with app.app_context():
        begin_write()
        with pytest.raises(policy.PermissionDenied, match="cannot be booked by staff"):
            service.create_booking(
                db.session.get(User, owner.id),
                db.session.get(BookingType, public_only.id),
                datetime.now(UTC) + timedelta(days=4),
                [db.session.get(User, owner.id)],
            )
        db.session.rollback()


def test_public_booking_gets_the_types_defaults_and_landing_shows_description(
    app, client, factory, signed_in
):
    """A type made on the screen, public and drawing on a group, shows its description on
    the landing page; a visitor's booking meets as the type's default with its details."""
    agent = factory.user("agent", name="Ada Agent")
    group_id = _group(app, "Front desk", [agent])
    data = form_data(
        "Advice call",
        slug="advice-call",
        description="Twenty minutes with an adviser.",
        duration_minutes="30",
        location_modes=["face_to_face", "remote"],
        default_location_mode="remote",
        location_detail="https://meet.example/advice",
        bookable_by=["public"],
        availability_source="group",
        group=str(group_id),
        weekends_enabled="on",
    )
    assert _post(client, "/admin/booking-types/new", signed_in, data).status_code == 303
    set_settings(app, public_scheduling_enabled=True, contact_required_fields="email")
    client.post("/logout", data={"csrf_token": signed_in})
    landing = client.get("/book").get_data(as_text=True)
    assert "Advice call" in landing and "Twenty minutes with an adviser." in landing

    with app.app_context():
        kind = db.session.scalars(
            select(BookingType).where(BookingType.slug == "advice-call")
        ).one()
        db.session.expunge(kind)
    start = first_slot(app, kind)
    response = book_form(client, "advice-call", start)
    assert response.status_code == 200
    assert "You're booked" in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert booking.location_mode == "remote"
        assert booking.location_detail == "https://meet.example/advice"
        assert booking.owner_id == agent.id


def test_types_service_refuses_wrong_json_types(app):
    """The API passes raw JSON values: wrong types get a clear message naming the field."""
    from app.bookings import types
    from app.database import begin_write

    with app.app_context():
        begin_write()
        kind = types.create_booking_type(None, {"name": "Base"})
        cases = {
            "duration_minutes": "60",
            "name": ["x"],
            "requires_approval": "yes",
            "location_modes": "remote",
            "bookable_by": [1],
            "group": "3",
            "weekends_enabled": 1,
            "max_per_day": 2.5,
            "colour": 123,
            "active": None,
        }
        for field, value in cases.items():
            with pytest.raises(types.BookingTypeError) as caught:
                types.update_booking_type(None, kind, {field: value})
            assert caught.value.field == field
        with pytest.raises(types.BookingTypeError, match="Unknown field"):
            types.create_booking_type(None, {"name": "X", "id": 5})
        assert kind.duration_minutes == 60 and kind.requires_approval is False
        db.session.rollback()


def test_group_in_use_cannot_be_deleted(app, client, factory, signed_in):
    """A group a booking type draws availability from cannot be deleted."""
    group_id = _group(app, "Used group")
    kind = factory.booking_type(slug="uses", name="Uses the group")
    _post(
        client,
        f"/admin/booking-types/{kind.id}",
        signed_in,
        form_data("Uses the group", slug="uses", availability_source="group", group=str(group_id)),
    )
    response = _post(client, f"/admin/groups/{group_id}/delete", signed_in, {})
    assert response.status_code == 400
    assert "Uses the group" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Group, group_id) is not None
