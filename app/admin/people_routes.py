"""People screens (issue [07]): list, add, import, edit, deactivate; behind ``people.manage``.

- ``GET /admin/people``: search (name or email), role, group and status filters, 50 a page;
  HTMX asks for the results fragment as the filters change (one URL, ``Vary: HX-Request``).
- ``GET /admin/people/search?q=&role=&name=``: the search-as-you-type picker, a native
  ``<select>`` narrowed to the matches (the full page renders the same select unfiltered, so
  nothing needs JavaScript).
- ``GET|POST /admin/people/new`` and ``/admin/people/<id>``: one person's details, groups and,
  for learners, their agent, mentor, assessor and employer.
- ``GET|POST /admin/people/import``: a CSV file, a preview naming every bad row, then all or
  nothing.
- ``GET|POST /admin/people/<id>/deactivate`` (a confirm step listing their upcoming bookings
  with reassign links), ``POST …/reactivate``, ``POST …/invite``.
- ``/admin/people/<id>/availability``: their hours, overrides and time off, by the handlers of
  "My availability" (``app/accounts/hours_routes.py``).

The rules (who may give which role, the last owner, zones, links) live in
``app/accounts/people.py``; these handlers load, authorise, call and render.
"""

from __future__ import annotations

import logging
import math
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from app import htmx
from app.accounts import people as svc
from app.accounts.access import permission_required
from app.accounts.hours_routes import others_bp as hours_bp
from app.accounts.models import Group, Role, User, group_members
from app.accounts.permissions import Perm
from app.accounts.service import AccountError, AccountForbidden, can_manage
from app.bookings.models import Booking, Hold, Status
from app.database import MAX_ID, utcnow
from app.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("people", __name__, url_prefix="/admin/people")
bp.register_blueprint(hours_bp)  # people.hours.* at /admin/people/<person_id>/availability

PER_PAGE = 50
PICKER_LIMIT = 20  # matches shown by the search-as-you-type picker
PICKER_FULL_LIMIT = 500  # options in the select rendered with the page (no JavaScript)
MAX_UPLOAD = 5 * 1024 * 1024
UPCOMING_LIMIT = 100
STATUSES = {"active": True, "inactive": False, "all": None}
PICKERS = {
    # form field -> (label, who may fill it: the picker's ``role`` argument)
    "assigned_agent_id": ("Assigned agent (end-point assessment)", "staff"),
    "mentor_id": ("Workplace mentor", "employer,staff"),
    "assessor_id": ("On-programme assessor", "staff"),
    "employer_id": ("Employer", "employer,staff"),
}
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


# --- helpers ---------------------------------------------------------------------------


def _record(message: str, category: str = "success") -> None:
    """Say what was done, to the person who did it and to the log (who changed what)."""
    flash(message, category)
    log.info("people: %s [user %s]", message, current_user.id)


def _person(person_id: int) -> User:
    return svc.get_person(person_id) or abort(404)


def _groups() -> list[Group]:
    return list(db.session.scalars(select(Group).order_by(Group.name)))


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        abort(400)
    return number if 0 < number <= MAX_ID else -1


def _checked(name: str) -> bool:
    return request.form.get(name) in ("y", "on", "1", "true")


def _eligible(role: str | None):
    """Active people who may fill a picker: ``role`` is a comma-separated list of role slugs,
    where ``staff`` means any staff role; empty means anyone."""
    query = select(User).join(Role, Role.id == User.role_id).where(User.active.is_(True))
    tokens = [t.strip() for t in (role or "").split(",") if t.strip()]
    if tokens:
        conditions = [Role.slug.in_([t for t in tokens if t != "staff"])]
        if "staff" in tokens:
            conditions.append(Role.is_staff.is_(True))
        query = query.where(or_(*conditions))
    return query


def _picker_options(role: str | None, q: str = "", limit: int = PICKER_FULL_LIMIT):
    query = _eligible(role)
    if q.strip():
        query = query.where(svc.name_or_email_contains(q))
    rows = db.session.scalars(query.order_by(func.lower(User.name), User.id).limit(limit + 1))
    found = list(rows)
    return found[:limit], len(found) > limit


def _picker(name: str, role: str, selected_id: int | None, q: str = "", limit=None) -> dict:
    options, more = _picker_options(role, q, limit or PICKER_FULL_LIMIT)
    selected = svc.get_person(selected_id) if selected_id else None
    if selected is not None and selected not in options:
        options = [selected, *options]
    label = PICKERS.get(name, (name.replace("_", " "), role))[0]
    return {
        "name": name,
        "label": label,
        "role": role,
        "options": options,
        "more": more,
        "selected_id": selected.id if selected else None,
        "q": q,
    }


def _form_values(person: User | None = None, posted: bool = False) -> dict:
    """The form as shown: posted values after an error, else the person's (or defaults)."""
    if posted:
        return {
            "name": request.form.get("name", ""),
            "email": request.form.get("email", ""),
            "role": request.form.get("role", ""),
            "timezone": request.form.get("timezone", ""),
            "group_ids": {v for v in request.form.getlist("groups")},
            "active": _checked("active"),
            "invite": _checked("invite"),
            **{key: request.form.get(key, "") for key in PICKERS},
        }
    if person is None:
        return {
            "name": "",
            "email": "",
            "role": "agent",
            "timezone": current_user.timezone,
            "group_ids": set(),
            "active": True,
            "invite": True,
        }
    links = svc.learner_links(person)
    return {
        "name": person.name,
        "email": person.email,
        "role": person.role.slug,
        "timezone": person.timezone,
        "group_ids": {str(g.id) for g in svc.groups_of(person)},
        "active": person.active,
        "invite": False,
        **{key: str(value) if value else "" for key, value in links.items()},
    }


def _upcoming(person: User) -> list[Booking]:
    """Their bookings still to come: the ones they hold time for, and, for a learner, theirs."""
    now = utcnow()
    held = select(Hold.booking_id).where(Hold.person_id == person.id, Hold.active.is_(True))
    return list(
        db.session.scalars(
            select(Booking)
            .where(
                or_(Booking.id.in_(held), Booking.learner_id == person.id),
                Booking.starts_at >= now,
                Booking.status.in_([Status.PROVISIONAL, Status.CONFIRMED]),
            )
            .order_by(Booking.starts_at, Booking.id)
            .limit(UPCOMING_LIMIT)
        )
    )


def _page_context(person: User) -> dict:
    return {
        "person": person,
        "can_edit": svc.may_edit(current_user, person),
        "can_reset": current_user.can(Perm.USERS_MANAGE) and can_manage(current_user, person),
        "last_owner": svc.is_last_active_owner(person),
        "is_self": person.id == current_user.id,
    }


def _edit_page(person: User, error: str | None = None, status: int = 200, posted=False):
    values = _form_values(person, posted)
    pickers = []
    if person.role.slug == svc.LEARNER:
        for key, (_label, role) in PICKERS.items():
            chosen = values.get(key) or ""
            pickers.append(_picker(key, role, int(chosen) if chosen.isdigit() else None))
    return render_template(
        "admin/people_edit.html",
        values=values,
        roles=svc.givable_roles(current_user),
        zones=svc.zone_choices(),
        groups=_groups(),
        pickers=pickers,
        error=error,
        **_page_context(person),
    ), status


# --- list ------------------------------------------------------------------------------


@bp.get("")
@permission_required(Perm.PEOPLE_MANAGE)
def index():
    q = request.args.get("q", "").strip()[:200]
    role = request.args.get("role", "").strip()
    group_id = _int_arg("group")
    status = request.args.get("status", "active")
    if status not in STATUSES:
        status = "active"
    query = svc.people_query(q or None, role or None, group_id, active=STATUSES[status])
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, math.ceil(total / PER_PAGE))
    try:
        page = min(max(int(request.args.get("page", "1")), 1), pages)
    except ValueError:
        page = 1
    people = list(db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    memberships: dict[int, list[str]] = {}
    if people:
        for user_id, name in db.session.execute(
            select(group_members.c.user_id, Group.name)
            .join(Group, Group.id == group_members.c.group_id)
            .where(group_members.c.user_id.in_([p.id for p in people]))
            .order_by(Group.name)
        ):
            memberships.setdefault(user_id, []).append(name)
    filters = {"q": q, "role": role, "group": group_id or "", "status": status}
    return htmx.render(
        "admin/people.html",
        "admin/_people_results.html",
        people=people,
        memberships=memberships,
        filters=filters,
        filtered=bool(q or role or group_id or status != "active"),
        args={k: v for k, v in filters.items() if v and not (k == "status" and v == "active")},
        total=total,
        page=page,
        pages=pages,
        per_page=PER_PAGE,
        roles=db.session.scalars(select(Role).order_by(Role.id)).all(),
        groups=_groups(),
    )


@bp.get("/search")
@permission_required(Perm.PEOPLE_MANAGE)
def search():
    """The picker fragment: a select of the active people matching ``q`` who may fill the
    part (``role``), keeping the current choice (sent as the field's own name)."""
    name = request.args.get("name", "person_id")
    if not _FIELD_NAME.match(name):
        abort(400)
    role = request.args.get("role", "")
    if not all(re.fullmatch(r"[a-z-]{1,64}", t) for t in role.split(",") if t):
        abort(400)
    selected = request.args.get(name, "")
    picker = _picker(
        name,
        role,
        int(selected) if selected.isdigit() and len(selected) < 12 else None,
        request.args.get("q", "")[:200],
        PICKER_LIMIT,
    )
    response = htmx.render(
        "admin/_people_picker.html", "admin/_people_picker.html", picker=picker, searched=True
    )
    return response


# --- add one ---------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Perm.PEOPLE_MANAGE)
def new():
    error, status = None, 200
    if request.method == "POST":
        try:
            person = svc.create_person(
                current_user,
                email=request.form.get("email", ""),
                name=request.form.get("name", ""),
                role=request.form.get("role", ""),
                timezone=request.form.get("timezone", ""),
                active=_checked("active"),
                group_ids=request.form.getlist("groups"),
                invite=_checked("invite"),
            )
            db.session.commit()
        except AccountForbidden as exc:
            db.session.rollback()
            error, status = str(exc), 403
        except AccountError as exc:
            db.session.rollback()
            error, status = str(exc), 400
        else:
            invited = " and sent an invitation email" if _checked("invite") else ""
            more = (
                " Link their agent, mentor, assessor and employer below."
                if person.role.slug == svc.LEARNER
                else ""
            )
            _record(
                f"{current_user.name} added {person.name} ({person.email}){invited}.{more}",
                "success",
            )
            return redirect(url_for("people.edit", person_id=person.id), 303)
    return render_template(
        "admin/people_new.html",
        values=_form_values(posted=request.method == "POST"),
        roles=svc.givable_roles(current_user),
        zones=svc.zone_choices(),
        groups=_groups(),
        error=error,
    ), status


# --- import many -----------------------------------------------------------------------


def _uploaded_text() -> str:
    """The CSV's text: an uploaded file, or the text sent back by the preview's confirm."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            raise AccountError("The file is larger than 5 MB; split it.")
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AccountError("Save the file as UTF-8 CSV and upload it again.") from exc
    text = request.form.get("csv_text", "")
    if len(text) > MAX_UPLOAD:
        raise AccountError("The file is larger than 5 MB; split it.")
    if not text.strip():
        raise AccountError("Choose a CSV file to upload.")
    return text


@bp.route("/import", methods=["GET", "POST"])
@permission_required(Perm.PEOPLE_MANAGE)
def import_people():
    if request.method == "GET":
        return render_template("admin/people_import.html", preview=None, error=None)
    try:
        text = _uploaded_text()
    except AccountError as exc:
        return render_template("admin/people_import.html", preview=None, error=str(exc)), 400
    preview = svc.parse_people_csv(text, current_user)
    if preview.ok and request.form.get("confirm") == "1":
        try:
            created = svc.import_people(current_user, preview)
            db.session.commit()
        except AccountError as exc:  # changed since the preview: show it again
            db.session.rollback()
            return render_template(
                "admin/people_import.html", preview=preview, csv_text=text, error=str(exc)
            ), 400
        _record(f"{current_user.name} imported {len(created)} people.", "success")
        return redirect(url_for("people.index"), 303)
    return render_template(
        "admin/people_import.html", preview=preview, csv_text=text, error=None
    ), (200 if preview.ok else 400)


# --- one person ------------------------------------------------------------------------


def _link_value(key: str):
    value = request.form.get(key, "").strip()
    return value or None


@bp.route("/<int:person_id>", methods=["GET", "POST"])
@permission_required(Perm.PEOPLE_MANAGE)
def edit(person_id: int):
    person = _person(person_id)
    if request.method == "GET":
        return _edit_page(person)
    if not svc.may_edit(current_user, person):
        abort(403)
    changes = {
        "name": request.form.get("name", ""),
        "email": request.form.get("email", ""),
        "role": request.form.get("role", ""),
        "timezone": request.form.get("timezone", ""),
        "group_ids": request.form.getlist("groups"),
    }
    if request.form.get("learner-profile") == "1":
        changes.update({key: _link_value(key) for key in PICKERS})

    def facts() -> tuple:
        links = svc.learner_links(person) if person.role.slug == svc.LEARNER else {}
        groups = ", ".join(g.name for g in svc.groups_of(person)) or "none"
        return (person.name, person.email, person.role.name, person.timezone, groups, links)

    before = facts()
    try:
        svc.update_person(current_user, person, **changes)
        db.session.commit()
    except AccountForbidden as exc:
        db.session.rollback()
        return _edit_page(_person(person_id), str(exc), 403, posted=True)
    except AccountError as exc:
        db.session.rollback()
        return _edit_page(_person(person_id), str(exc), 400, posted=True)
    after = facts()
    labels = ("name", "email", "role", "time zone", "groups")
    what = [
        f"{label} {old} → {new}"
        for label, old, new in zip(labels, before, after, strict=False)
        if old != new
    ]
    if before[5] != after[5]:
        what.append("learner profile")
    detail = f" ({'; '.join(what)})" if what else ""
    _record(f"{current_user.name} saved {person.name}{detail}.", "success")
    return redirect(url_for("people.edit", person_id=person.id), 303)


@bp.route("/<int:person_id>/deactivate", methods=["GET", "POST"])
@permission_required(Perm.PEOPLE_MANAGE)
def deactivate(person_id: int):
    person = _person(person_id)
    error, status = None, 200
    if request.method == "POST":
        if not svc.may_edit(current_user, person):
            abort(403)
        try:
            svc.deactivate(current_user, person)
            db.session.commit()
        except AccountForbidden as exc:
            db.session.rollback()
            person, error, status = _person(person_id), str(exc), 403
        except AccountError as exc:
            db.session.rollback()
            person, error, status = _person(person_id), str(exc), 400
        else:
            kept = len(_upcoming(person))
            bookings = (
                (
                    " Their upcoming booking was kept."
                    if kept == 1
                    else f" Their {kept} upcoming bookings were kept."
                )
                if kept
                else ""
            )
            _record(
                f"{current_user.name} deactivated {person.name}: they can no longer sign in "
                f"and offer no slots.{bookings}",
                "success",
            )
            return redirect(url_for("people.edit", person_id=person.id), 303)
    return render_template(
        "admin/people_deactivate.html",
        upcoming=_upcoming(person),
        limit=UPCOMING_LIMIT,
        error=error,
        can_reassign=current_user.can(Perm.CAPACITY_MANAGE)
        and current_user.can(Perm.BOOKINGS_ASSIGN),
        planning=(Status.PROVISIONAL, Status.CONFIRMED),
        **_page_context(person),
    ), status


@bp.post("/<int:person_id>/reactivate")
@permission_required(Perm.PEOPLE_MANAGE)
def reactivate(person_id: int):
    person = _person(person_id)
    if not svc.may_edit(current_user, person):
        abort(403)
    try:
        svc.reactivate(current_user, person)
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        return _edit_page(_person(person_id), str(exc), 400)
    _record(f"{current_user.name} reactivated {person.name}.", "success")
    return redirect(url_for("people.edit", person_id=person.id), 303)


@bp.post("/<int:person_id>/invite")
@permission_required(Perm.PEOPLE_MANAGE)
def invite(person_id: int):
    person = _person(person_id)
    if not svc.may_edit(current_user, person):
        abort(403)
    try:
        svc.resend_invitation(current_user, person)
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        return _edit_page(_person(person_id), str(exc), 400)
    _record(f"{current_user.name} sent {person.name} a new invitation email.")
    return redirect(url_for("people.edit", person_id=person.id), 303)
