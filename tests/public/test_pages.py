"""S1/S2: the landing page, the slot picker and the switch that closes them."""

from __future__ import annotations

from tests.public.conftest import set_settings


def test_closed_when_public_scheduling_is_off(app, client, public):
    """With the switch off, /book says so with a 200 and lists nothing."""
    set_settings(app, public_scheduling_enabled=False)
    response = client.get("/book")
    assert response.status_code == 200
    assert "Online booking is not open" in response.get_data(as_text=True)
    assert "Online booking is not open" in client.get("/book/consultation").get_data(as_text=True)


def test_landing_lists_public_types_with_branding(app, client, public, factory):
    """Only active types open to the public are listed; name and colour come from settings."""
    factory.booking_type(slug="staff-only", name="Staff only", bookable_by=["staff"])
    set_settings(app, organisation_name="Acme Skills", brand_primary_colour="#aa3300")
    html = client.get("/book").get_data(as_text=True)
    assert "Consultation" in html and "Staff only" not in html
    assert "Acme Skills" in html and "#aa3300" in html


def test_picker_shows_slots_in_the_visitor_zone(app, client, public):
    """?tz= changes the zone shown; a staff-only type is a 404; HTMX gets the fragment."""
    london = client.get("/book/consultation?tz=Europe/London").get_data(as_text=True)
    ny = client.get("/book/consultation?tz=America/New_York").get_data(as_text=True)
    assert 'name="start"' in london
    assert "America/New_York</strong>" in ny
    assert "<option selected>America/New_York</option>" in ny
    fragment = client.get("/book/consultation?tz=UTC", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith("{%") is False and "<html" not in body
    assert 'id="picker"' in body and "HX-Request" in fragment.headers["Vary"]
    assert client.get("/book/nope").status_code == 404
    bad = client.get("/book/consultation?tz=Not/AZone&day=garbage")
    assert bad.status_code == 200
