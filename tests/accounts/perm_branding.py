"""Permission-table builders for the Branding settings screen (/admin/settings/branding).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there). Each request
changes something (a new name, a logo with new bytes, removing a logo made for it), so the CSRF
sweep can tell an accepted post from an ignored one. The logo's own URL is public: it is shown
on public pages and in emails.
"""

from __future__ import annotations

import io
import itertools

from app.accounts.permissions import Perm

NEED = Perm.SETTINGS_MANAGE
PAGE = "/admin/settings/branding"
_numbers = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class RewindingFile(io.BytesIO):
    """An upload the sweeps may post several times: the test client reads the file and
    closes it each time it builds a request, so closing starts it over instead."""

    def close(self) -> None:
        self.seek(0)


def _store_logo(app) -> None:
    from app.admin.branding import save_logo
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        save_logo(PNG + str(next(_numbers)).encode())
        db.session.commit()


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    Req = tables["Req"]  # noqa: N806 - the class, as named in the conftest

    def page(world, holder, actor):
        data = {"organisation_name": f"Branded {next(_numbers)}", "brand_primary_colour": "#2457a7"}
        return [
            Req("branding:get", "GET", PAGE, permission=NEED),
            Req("branding:save", "POST", PAGE, data, 303, NEED),
        ]

    def upload(world, holder, actor):
        logo = RewindingFile(PNG + f"upload {next(_numbers)}".encode())
        return [Req("branding:logo", "POST", f"{PAGE}/logo", {"logo": (logo, "l.png")}, 303, NEED)]

    def remove(world, holder, actor):
        _store_logo(world.app)
        return [
            Req("branding:remove-get", "GET", f"{PAGE}/logo/remove", permission=NEED),
            Req("branding:remove", "POST", f"{PAGE}/logo/remove", {}, 303, NEED),
        ]

    builders = {
        "branding.settings_page": page,
        "branding.upload_logo": upload,
        "branding.remove_logo": remove,
    }
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(builders, NEED))
    tables["GUARDED_BUILDERS"].update(builders)
    tables["PUBLIC_ENDPOINTS"].add("branding.logo")
