"""The Branding settings screen and the logo's public URL (issue [09]).

- ``GET|POST /admin/settings/branding``: organisation name and primary colour
  (``settings.manage``).
- ``POST /admin/settings/branding/logo``: upload a logo (multipart); a file over 512 KB gets
  this page with a clear message (413), never a bare error.
- ``GET|POST /admin/settings/branding/logo/remove``: a confirm step, then removal.
- ``GET /branding/logo-<digest>.<ext>``: the logo, public (it is on public pages and emails),
  cached for a year because its URL changes whenever its bytes do.

The rules live in ``app/admin/branding.py``.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app import htmx
from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.admin import branding as svc
from app.admin import settings
from app.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("branding", __name__)

# Multipart framing around the file: a request this much over the limit cannot hold a logo
# that fits, so it is refused from its Content-Length alone.
_FORM_OVERHEAD = 16 * 1024
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@bp.app_template_global("branding_logo_url")
def _logo_url_global(external: bool = False) -> str | None:
    """Templates (public pages, emails, the staff header) ask for the logo's URL."""
    return svc.logo_url(external=external)


def _page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    current = {
        "organisation_name": settings.get_setting("organisation_name"),
        "brand_primary_colour": settings.get_setting("brand_primary_colour"),
    }
    logo = svc.logo_info()
    context = {
        "sections": settings.SECTIONS,
        "values": {**current, **(values or {})},
        "errors": errors or {},
        "logo": logo,
        "logo_size": svc.describe_size(logo.size) if logo else "",
        "max_logo": svc.describe_size(svc.MAX_LOGO_BYTES),
        "min_contrast": settings.MIN_CONTRAST,
        "changes": svc.recent_changes(),
        "labels": {key: s.label for key, s in settings.SETTINGS.items()} | {svc.LOGO: "Logo"},
    }
    return htmx.render(
        "admin/settings_branding.html", "admin/_settings_branding.html", status, **context
    )


def _record(message: str) -> None:
    flash(message, "success")
    log.info("branding: %s [user %s]", message, current_user.id)


@bp.route("/admin/settings/branding", methods=["GET", "POST"])
@permission_required(Perm.SETTINGS_MANAGE)
def settings_page():
    if request.method == "GET":
        return _page()
    name = request.form.get("organisation_name", "")
    colour = request.form.get("brand_primary_colour", "")
    try:
        changed = svc.save_details(name, colour, current_user.id)
    except svc.BrandingInvalid as exc:
        db.session.rollback()
        values = {"organisation_name": name, "brand_primary_colour": colour}
        return _page(400, exc.errors, values)
    db.session.commit()
    if changed:
        said = ", ".join(f"{settings.SETTINGS[key].label}: {value}" for key, value in changed)
        _record(f"Branding saved ({said}).")
    else:
        flash("Nothing changed.", "success")
    return redirect(url_for("branding.settings_page"), 303)


@bp.post("/admin/settings/branding/logo")
@permission_required(Perm.SETTINGS_MANAGE)
def upload_logo():
    length = request.content_length or 0
    if length > svc.MAX_LOGO_BYTES + _FORM_OVERHEAD:
        return _page(413, {"logo": svc.too_large_message(length)})
    upload = request.files.get("logo")
    data = upload.stream.read(svc.MAX_LOGO_BYTES + 1) if upload else b""
    try:
        info = svc.save_logo(data, current_user.id)
    except svc.BrandingError as exc:
        db.session.rollback()
        status = 413 if len(data) > svc.MAX_LOGO_BYTES else 400
        return _page(status, {"logo": str(exc)})
    db.session.commit()
    _record(f"Logo uploaded ({info.extension.upper()}, {svc.describe_size(info.size)}).")
    return redirect(url_for("branding.settings_page"), 303)


@bp.route("/admin/settings/branding/logo/remove", methods=["GET", "POST"])
@permission_required(Perm.SETTINGS_MANAGE)
def remove_logo():
    if request.method == "GET":
        logo = svc.logo_info()
        if logo is None:
            flash("There is no logo to remove.", "success")
            return redirect(url_for("branding.settings_page"))
        return render_template("admin/settings_branding_remove.html", logo=logo)
    if svc.remove_logo(current_user.id):
        db.session.commit()
        _record("Logo removed; pages and emails show the organisation name alone.")
    else:
        flash("There is no logo to remove.", "success")
    return redirect(url_for("branding.settings_page"), 303)


@bp.get("/branding/logo-<digest>.<extension>")
def logo(digest: str, extension: str):
    row = svc.logo_for(digest, extension) or abort(404)
    response = make_response(row.data)
    response.headers["Content-Type"] = row.content_type
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SVG_POLICY
    response.headers["Content-Disposition"] = f"inline; filename=logo.{extension}"
    return response
