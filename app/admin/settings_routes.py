"""Settings screens (issue [09]): ``/admin/settings/<section>``, behind ``settings.manage``.

- ``GET /admin/settings``: the first section.
- ``GET|POST /admin/settings/<section>``: one seed 002 section (General, Time, Calendars,
  UX preferences, Mailer). Field names are the setting keys; a post may carry only some of
  them. All values are checked before any is saved (``settings.save_settings``), each change
  gets an audit entry, and the section's recent changes are listed under the form.
- ``POST /admin/settings/mailer/test``: send a test email to the signed-in person.

Sections with a screen of their own (Notifications) are only linked; ``SECTIONS`` in
``app/admin/settings.py`` is the one list of them. HTMX posts get the form fragment back.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.accounts.access import permission_required
from app.accounts.people import zone_choices
from app.accounts.permissions import Perm
from app.admin import settings as svc
from app.admin.settings_mail import send_test_email
from app.extensions import db
from app.htmx import render, wants_fragment

log = logging.getLogger(__name__)
bp = Blueprint("settings_screens", __name__, url_prefix="/admin/settings")


@bp.app_context_processor
def _slot_colours() -> dict:
    """``slot_colours()`` for the public picker: the UX preference colours (validated
    ``#rrggbb`` values, so safe inside a style attribute), read only when a picker renders."""

    def slot_colours() -> dict[str, str]:
        return {
            "text": str(svc.get_setting("slot_text_colour")),
            "available": str(svc.get_setting("slot_available_colour")),
            "selected": str(svc.get_setting("slot_selected_colour")),
        }

    return {"slot_colours": slot_colours}


def _context(section: svc.Section, values: dict, errors: dict[str, str], **extra) -> dict:
    settings = svc.section_settings(section.slug)
    return {
        "sections": svc.SECTIONS,
        "section": section,
        "settings": settings,
        "values": values,
        "errors": errors,
        "changes": svc.recent_changes([s.key for s in settings]),
        "labels": {key: s.label for key, s in svc.SETTINGS.items()},
        "zones": zone_choices() if section.slug == "general" else [],
        **extra,
    }


def _section(slug: str) -> svc.Section:
    return svc.section(slug) or abort(404)


@bp.get("")
@permission_required(Perm.SETTINGS_MANAGE)
def index():
    first = next(s for s in svc.SECTIONS if s.endpoint is None)
    return redirect(url_for(".section", slug=first.slug))


@bp.get("/<slug>")
@permission_required(Perm.SETTINGS_MANAGE)
def section(slug: str):
    current = _section(slug)
    return render(
        "admin/settings.html",
        "admin/_settings_form.html",
        **_context(current, svc.all_settings(), {}),
    )


@bp.post("/<slug>")
@permission_required(Perm.SETTINGS_MANAGE)
def save(slug: str):
    current = _section(slug)
    values, errors = svc.parse_form(current.slug, request.form)
    if not errors:
        try:
            changed = svc.save_settings(values, current_user.id)
        except svc.SettingsInvalid as exc:
            errors = exc.errors
    if errors:
        db.session.rollback()
        shown = {**svc.all_settings(), **_as_typed(current.slug)}
        return render(
            "admin/settings.html",
            "admin/_settings_form.html",
            422,
            **_context(current, shown, errors),
        )
    db.session.commit()
    for key, _value in changed:
        log.info("settings: %s changed [user %s]", key, current_user.id)
    message = (
        f"{current.title} settings saved ({len(changed)} changed)."
        if changed
        else "Nothing changed."
    )
    if wants_fragment():
        return render(
            "admin/settings.html",
            "admin/_settings_form.html",
            **_context(current, svc.all_settings(), {}, message=message),
        )
    flash(message, "success")
    return redirect(url_for(".section", slug=current.slug), 303)


def _as_typed(slug: str) -> dict[str, object]:
    """What the person typed, to show it again beside the message (checkboxes as ticked)."""
    shown: dict[str, object] = {}
    for setting in svc.section_settings(slug):
        if setting.key not in request.form:
            continue
        raw = request.form.getlist(setting.key)
        if setting.kind is bool:
            shown[setting.key] = raw[-1].lower() in ("y", "on", "true", "1", "yes")
        elif setting.kind is list:
            shown[setting.key] = [v for v in raw if v]
        else:
            shown[setting.key] = raw[-1]
    return shown


@bp.post("/mailer/test")
@permission_required(Perm.SETTINGS_MANAGE)
def test_email():
    sent, message = send_test_email(current_user.email, current_user.name)
    if wants_fragment():
        return render_template("admin/_settings_test_email.html", sent=sent, message=message)
    flash(message, "success" if sent else "error")
    return redirect(url_for(".section", slug="mailer") + "#test-email-h", 303)
