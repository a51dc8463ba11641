"""``all_settings`` reads the stored values as the driver's rows and decodes them itself
(issue [14]): each value must come back as the ORM's JSON column gives it, on SQLite (whose
column affinity turns the text ``50`` into an integer, and leaves ``"50"`` text) and on
PostgreSQL (whose driver decodes JSON)."""

from __future__ import annotations

import pytest

from app.admin.models import OrgSetting
from app.admin.settings import SETTINGS, all_settings, get_setting
from app.database import begin_write
from app.extensions import db

pytestmark = pytest.mark.db

STORED = {
    "organisation_name": "50",  # text that looks like a number
    "slot_availability_percentage": 75,
    "weekends_enabled": True,
    "two_way_sync": False,
    "day_start": "07:30",
    "max_bookings_per_contact_per_day": 5.0,  # a float (SQLite may store it as 5)
    "personal_providers": ["ics", "google"],
    "mailer_from_name": 'Zoë «Slotbook» \\ "quoted"',
    "organisation_timezone": None,  # JSON null: not text, so the default
}


def test_every_stored_value_reads_as_the_orm_reads_it(app):
    assert all(key in SETTINGS for key in STORED)
    with app.app_context():
        begin_write()
        for key, value in STORED.items():
            db.session.add(OrgSetting(key=key, value=value))
        db.session.commit()
        fast = all_settings()
        db.session.expire_all()
        assert fast == {key: get_setting(key) for key in SETTINGS}
        assert fast["organisation_name"] == "50"
        assert fast["slot_availability_percentage"] == 75
        assert fast["weekends_enabled"] is True and fast["two_way_sync"] is False
        assert fast["mailer_from_name"] == STORED["mailer_from_name"]
        assert fast["organisation_timezone"] == SETTINGS["organisation_timezone"].default
        assert fast["personal_providers"] == ["ics", "google"]
