"""Calendar linking screens: each person's own calendars (``/me/calendars``) and the
organisation's Microsoft 365 connection with every connection's health (``/admin/calendars``).

Thin by design: load, authorise (every id is checked against the signed-in person; another
person's id is a 404), call ``service``, commit, render. HTMX posts get the list fragment
back; the same forms work without JavaScript through a redirect and a flash message.

Linking a CalDAV account or an ICS feed never waits for the calendar server here: the post
queues a background check (``checks.py``) and redirects to ``/me/calendars?check=<id>``,
whose status region polls until the check has linked the calendar or said why not.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.admin.settings import get_setting
from app.connections import checks, service
from app.connections.forms import (
    CalDAVForm,
    CalendarOptionsForm,
    GoogleClientForm,
    GoogleForm,
    GoogleWorkspaceForm,
    IcsForm,
    MicrosoftForm,
    OrganisationForm,
)
from app.connections.models import ConnectionKind
from app.connections.service import LinkError, NotFound
from app.database import utcnow
from app.extensions import db
from app.htmx import render, wants_fragment
from app.urls import absolute_url

bp = Blueprint("connections", __name__)
log = logging.getLogger(__name__)
FLOW_KEY = "microsoft_link_flow"
GOOGLE_FLOW_KEY = "google_link_flow"


# --- template helpers ------------------------------------------------------------------


@bp.app_template_filter("ago")
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """A relative time for people: "just now", "3 min ago", "in 2 h", "5 days ago"."""
    if value is None:
        return ""
    seconds = ((now or utcnow()) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "in under a minute" if future else "just now"
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    raise AssertionError("unreachable")


@bp.app_context_processor
def _calendar_banner() -> dict:
    """``calendar_relink_notices()`` for ``base.html``: one small query, and only when the
    page actually shows the banner (fragments never call it)."""

    def notices() -> list:
        if not current_user.is_authenticated:
            return []
        if "calendar_relink_notices" not in g:
            try:
                g.calendar_relink_notices = service.relink_notices(current_user)
            except SQLAlchemyError:  # an error page after a failed transaction still renders
                log.warning("could not read calendar re-link notices", exc_info=True)
                g.calendar_relink_notices = []
        return g.calendar_relink_notices

    return {
        "calendar_relink_notices": notices,
        "display_url": service.display_url,
        "calendar_name": service.calendar_name,
    }


# --- my calendars ----------------------------------------------------------------------


def _list_context(**extra) -> dict:
    connections = service.user_connections(current_user)
    org_calendars = service.organisation_calendars(current_user)
    organisation = org_calendars[0].connection if org_calendars else None
    return {
        "connections": connections,
        "health": service.health_of([*connections, *([organisation] if organisation else [])]),
        "org_calendars": org_calendars,
        "organisation": organisation,
        "allowed": service.allowed_providers(),
        **extra,
    }


def _page(
    status: int = 200,
    caldav: CalDAVForm | None = None,
    ics: IcsForm | None = None,
    check: checks.LinkCheck | None = None,
    check_error: str | None = None,
):
    relink = _relink_target()
    if caldav is None:
        caldav = CalDAVForm(formdata=None)
        if relink is not None and relink.kind == ConnectionKind.CALDAV:
            caldav.url.data, caldav.username.data = relink.url, relink.username
        elif check is not None and check.state == checks.State.FAILED and check.username:
            caldav.url.data, caldav.username.data = check.url, check.username  # try again
    if ics is None:
        ics = IcsForm(formdata=None)
        if relink is not None and relink.kind == ConnectionKind.ICS:
            ics.url.data = relink.url
    context = _list_context(
        caldav=caldav,
        ics=ics,
        relink=relink,
        ms_ready=service.organisation_app_ready(),
        google_ready=service.google_app_ready(),
        check=check,
        check_error=check_error,
    )
    return render_template("connections/index.html", **context), status


def _relink_target():
    connection_id = request.args.get("relink", type=int)
    if connection_id is None:
        return None
    try:
        return service.own_connection(current_user, connection_id)
    except NotFound:
        return None


def _after_change(message: str | None = None, error: str | None = None, focus: bool = False):
    """The answer to a change on the list: the refreshed fragment for HTMX, else back to the
    page with a flash message. ``focus`` moves the focus to the message (the control that
    had it is gone, e.g. after disconnecting)."""
    if wants_fragment():
        status = 400 if error else 200
        return render(
            "connections/index.html",
            "connections/_list.html",
            status,
            **_list_context(message=message, error=error, focus_message=focus),
        )
    flash(error or message, "error" if error else "success")
    return redirect(url_for("connections.index"), 303)


@bp.get("/me/calendars")
@login_required
def index():
    """The page; with ``?check=<id>`` it also shows where that link check stands."""
    check_id = request.args.get("check")
    if check_id is None:
        return _page()
    try:
        check, problem = checks.find(current_user, check_id), None
    except LinkError as exc:  # NotFound included: unknown, expired or someone else's
        check, problem = None, str(exc)
    if wants_fragment():
        return _check_progress(check, problem)
    return _page(check=check, check_error=problem)


def _check_progress(check: checks.LinkCheck | None, problem: str | None):
    """The status region's content for its poll: 204 (nothing to swap) while the check runs
    and the page already says so; else the new state, with the refreshed list swapped in
    out of band once the calendar is linked. The poller's id says what the page shows."""
    if check is not None and not check.done:
        shown = request.headers.get("HX-Trigger", "")
        if shown == f"link-check-{'slow' if check.slow else 'waiting'}":
            response = make_response("", 204)
            response.vary.add("HX-Request")
            return response
    context = {"check": check, "check_error": problem}
    if check is not None and check.state == checks.State.LINKED:
        context |= _list_context(oob=True)
    return render("connections/index.html", "connections/_link_check_state.html", **context)


@bp.post("/me/calendars/caldav")
@login_required
def add_caldav():
    form = CalDAVForm()
    if not form.validate_on_submit():
        return _page(400, caldav=form)
    try:
        draft = service.caldav_draft(
            current_user, form.url.data, form.username.data, form.password.data
        )
        check = checks.start(current_user, draft)
    except LinkError as exc:
        form.form_errors.append(str(exc))
        return _page(400, caldav=form)
    return _checking(check)


@bp.post("/me/calendars/ics")
@login_required
def add_ics():
    form = IcsForm()
    if not form.validate_on_submit():
        return _page(400, ics=form)
    try:
        check = checks.start(current_user, service.ics_draft(current_user, form.url.data))
    except LinkError as exc:
        form.form_errors.append(str(exc))
        return _page(400, ics=form)
    return _checking(check)


def _checking(check: checks.LinkCheck):
    """To the page that follows the check (the same for HTMX and plain posts)."""
    return redirect(url_for("connections.index", check=check.id) + "#link-check", 303)


def _linked(connection):
    flash(checks.linked_message(connection), "success")
    return redirect(url_for("connections.index") + f"#connection-{connection.id}", 303)


def _start_sign_in(start_link, login_hint: str | None, flow_key: str):
    """Send the browser to a provider's sign-in (Microsoft or Google). The flow, which holds
    the PKCE verifier, stays sealed in the session: it is not for the browser."""
    try:
        flow = start_link(current_user, login_hint)
    except LinkError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("connections.index"), 303)
    session[flow_key] = service.seal_flow(flow)
    return redirect(flow["auth_uri"], 303)


def _finish_sign_in(complete_link, flow_key: str):
    """The provider's callback: the flow is used once (popped), and the link is written."""
    flow = service.open_flow(session.pop(flow_key, None))
    db.session.rollback()  # end the read: linking writes later, as a writer
    try:
        connection = complete_link(current_user, flow, request.args.to_dict())
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("connections.index"), 303)
    return _linked(connection)


@bp.post("/me/calendars/microsoft")
@login_required
def microsoft_start():
    return _start_sign_in(service.start_microsoft_link, MicrosoftForm().login_hint.data, FLOW_KEY)


@bp.get("/me/calendars/microsoft/callback")
@login_required
def microsoft_callback():
    return _finish_sign_in(service.complete_microsoft_link, FLOW_KEY)


@bp.post("/me/calendars/calendars/<int:calendar_id>")
@login_required
def calendar_options(calendar_id: int):
    form = CalendarOptionsForm()
    available = bool(form.for_availability.data)
    receives = bool(form.receives_bookings.data) and not form.stop_receiving.data
    try:
        calendar = service.set_calendar_options(
            current_user, calendar_id, for_availability=available, receives_bookings=receives
        )
        name = service.calendar_name(calendar)
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    except LinkError as exc:
        db.session.rollback()
        return _after_change(error=str(exc))
    counts = "counts for availability" if available else "does not count for availability"
    receiving = " and receives bookings" if receives else ""
    return _after_change(message=f"Saved: “{name}” {counts}{receiving}.")


@bp.post("/me/calendars/<int:connection_id>/sync")
@login_required
def sync_now(connection_id: int):
    try:
        connection = service.request_connection_sync(current_user, connection_id)
        label = connection.label
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    return _after_change(message=f"“{label}” will be synced within a minute.")


@bp.get("/me/calendars/<int:connection_id>/disconnect")
@login_required
def disconnect_confirm(connection_id: int):
    try:
        connection = service.own_connection(current_user, connection_id)
    except NotFound:
        abort(404)
    return render(
        "connections/disconnect.html",
        "connections/_disconnect_confirm.html",
        connection=connection,
    )


@bp.post("/me/calendars/<int:connection_id>/disconnect")
@login_required
def disconnect(connection_id: int):
    try:
        label = service.disconnect(current_user, connection_id)
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    return _after_change(
        message=f"Disconnected “{label}”. Its busy time no longer counts.", focus=True
    )


# --- the organisation's connection and every connection's health -------------------------


def _admin_page(
    form: OrganisationForm | None = None,
    status: int = 200,
    google_client: GoogleClientForm | None = None,
    google_workspace: GoogleWorkspaceForm | None = None,
):
    organisation = service.organisation_connection()
    workspace = service.google_workspace_connection()
    summary = service.google_workspace_summary(workspace)
    if google_client is None:
        google_client = GoogleClientForm(formdata=None, data={"client_id": summary["client_id"]})
    if google_workspace is None:
        google_workspace = GoogleWorkspaceForm(
            formdata=None, data={"domains": " ".join(summary["domains"])}
        )
    if form is None:
        form = OrganisationForm(
            formdata=None,
            data={
                "tenant_id": organisation.tenant_id if organisation else "",
                "client_id": organisation.client_id if organisation else "",
                "show_details": bool(get_setting("show_event_details")),
            },
        )
    return render_template(
        "connections/admin.html",
        form=form,
        organisation=organisation,
        redirect_uri=absolute_url("connections.microsoft_callback"),
        google_client=google_client,
        google_workspace=google_workspace,
        google_redirect_uri=absolute_url("connections.google_callback"),
        workspace=workspace,
        google=summary,
        primary_provider=get_setting("primary_calendar_provider"),
        **_health_context(),
    ), status


def _health_context(**extra) -> dict:
    rows = service.all_connections()
    return {
        "rows": rows,
        "admin_health": service.health_of(connection for connection, _ in rows),
        **extra,
    }


@bp.get("/admin/calendars")
@permission_required(Perm.INTEGRATIONS_MANAGE)
def admin():
    return _admin_page()


@bp.post("/admin/calendars")
@permission_required(Perm.INTEGRATIONS_MANAGE)
def admin_save():
    form = OrganisationForm()
    if not form.validate_on_submit():
        return _admin_page(form, 400)
    try:
        service.save_organisation_connection(
            form.tenant_id.data,
            form.client_id.data,
            form.client_secret.data or None,
            bool(form.show_details.data),
        )
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _admin_page(form, 400)
    flash("Organisation Microsoft 365 connection saved. It syncs within a minute.", "success")
    return redirect(url_for("connections.admin"), 303)


@bp.post("/admin/calendars/<int:connection_id>/sync")
@permission_required(Perm.INTEGRATIONS_MANAGE)
def admin_sync(connection_id: int):
    try:
        connection = service.request_any_sync(connection_id)
        label = connection.label
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    message = f"“{label}” will be synced within a minute."
    if wants_fragment():
        return render(
            "connections/admin.html",
            "connections/_health_table.html",
            **_health_context(message=message),
        )
    flash(message, "success")
    return redirect(url_for("connections.admin"), 303)


# --- Google (issue [12]) -----------------------------------------------------------------


@bp.post("/me/calendars/google")
@login_required
def google_start():
    return _start_sign_in(service.start_google_link, GoogleForm().login_hint.data, GOOGLE_FLOW_KEY)


@bp.get("/me/calendars/google/callback")
@login_required
def google_callback():
    return _finish_sign_in(service.complete_google_link, GOOGLE_FLOW_KEY)


@bp.post("/admin/calendars/google/client")
@permission_required(Perm.INTEGRATIONS_MANAGE)
def google_client_save():
    form = GoogleClientForm()
    if not form.validate_on_submit():
        return _admin_page(status=400, google_client=form)
    try:
        service.save_google_client(form.client_id.data, form.client_secret.data or None)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _admin_page(status=400, google_client=form)
    flash("Google OAuth client saved: people can now connect their Google accounts.", "success")
    return redirect(url_for("connections.admin") + "#google-h", 303)


@bp.post("/admin/calendars/google/workspace")
@permission_required(Perm.INTEGRATIONS_MANAGE)
def google_workspace_save():
    form = GoogleWorkspaceForm()
    if not form.validate_on_submit():
        return _admin_page(status=400, google_workspace=form)
    try:
        upload = form.key_file.data
        raw = upload.read(service.MAX_KEY_FILE + 1) if upload and upload.filename else None
        key = service.parse_service_account_key(raw) if raw else None
        domains = service.parse_domains([form.domains.data or ""])
        service.save_google_workspace(key, domains)
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _admin_page(status=400, google_workspace=form)
    flash("Google Workspace connection saved. It syncs within a minute.", "success")
    return redirect(url_for("connections.admin") + "#workspace-h", 303)
