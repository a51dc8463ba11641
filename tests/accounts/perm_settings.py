"""Permission-table builders for the settings screens (/admin/settings, issue [09]).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py``. Each save posts a reminder time no earlier request used, so
an accepted post always writes (a setting and its audit entry). The test email writes
nothing by design (it only talks to SMTP), so it is listed in ``SESSION_ONLY_POSTS``.
"""

from __future__ import annotations

import itertools

from app.accounts.permissions import Perm

NEED = Perm.SETTINGS_MANAGE
_minutes = itertools.count(100)


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    Req = tables["Req"]  # noqa: N806 - the class, as named in the conftest

    def index(world, holder, actor):
        return [Req("settings:index", "GET", "/admin/settings", ok=302, permission=NEED)]

    def section(world, holder, actor):
        return [
            Req(f"settings:{slug}", "GET", f"/admin/settings/{slug}", permission=NEED)
            for slug in ("general", "time", "calendars", "ux", "mailer")
        ]

    def save(world, holder, actor):
        data = {"reminder_minutes": str(next(_minutes))}
        return [Req("settings:save", "POST", "/admin/settings/time", data, 303, NEED)]

    def test_email(world, holder, actor):
        return [Req("settings:test-email", "POST", "/admin/settings/mailer/test", {}, 303, NEED)]

    builders = {
        "settings_screens.index": index,
        "settings_screens.section": section,
        "settings_screens.save": save,
        "settings_screens.test_email": test_email,
    }
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(builders, NEED))
    tables["GUARDED_BUILDERS"].update(builders)
