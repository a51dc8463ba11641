"""The people screens in headless Chromium, as an owner uses them: live filtering, adding a
learner, linking their agent with the search-as-you-type picker, the import preview, the
deactivate confirmation and someone else's hours; axe-core and a screenshot for each."""

from __future__ import annotations

from playwright.sync_api import expect

from app.accounts.models import LearnerProfile, User
from app.extensions import db
from tests.browser.conftest import htmx_settled, shoot, sign_in


def test_owner_runs_people_in_the_browser(app, factory, live_server, page, tmp_path):
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    factory.user("agent", email="amara@example.test", name="Amara Okafor")
    factory.user("agent", email="ben@example.test", name="Ben Brown")
    factory.user("employer", email="emma@example.test", name="Emma Employer")
    sign_in(page, live_server, owner.email)

    page.get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    htmx_settled(page)  # htmx binds its triggers on load: typing earlier would go unheard
    page.get_by_label("Name or email").fill("amara")
    htmx_settled(page)
    expect(page.locator("#people-count")).to_have_text("1 person")
    assert "q=amara" in page.url  # the filters are in the address, for back and sharing
    shoot(page, "people-list")

    page.get_by_role("link", name="Add a person").click()
    page.get_by_label("Name", exact=True).fill("Lee Learner")
    page.get_by_label("Email", exact=True).fill("lee@example.test")
    page.get_by_label("Role").select_option("learner")
    page.get_by_label("Time zone").select_option("Europe/Dublin")
    expect(page.get_by_label("Send an invitation email")).to_be_checked()
    shoot(page, "people-new")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("heading", name="Lee Learner")).to_be_visible()

    search = page.get_by_label("Search for the assigned agent (end-point assessment)")
    htmx_settled(page)
    search.fill("ben")
    htmx_settled(page)
    picker = page.locator("#p-assigned_agent_id")
    expect(picker.locator("option")).to_have_count(2)  # nobody, Ben
    picker.select_option(label="Ben Brown · ben@example.test (Agent)")
    page.get_by_label("Search for the workplace mentor").fill("emma")
    htmx_settled(page)
    page.locator("#p-mentor_id").select_option(
        label="Emma Employer · emma@example.test (Employer (workplace mentor))"
    )
    shoot(page, "people-edit-learner")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Olive Owner saved Lee Learner")).to_be_visible()
    with app.app_context():
        lee = db.session.query(User).filter_by(email="lee@example.test").one()
        profile = db.session.get(LearnerProfile, lee.id)
        assert profile.assigned_agent.name == "Ben Brown"
        assert profile.workplace_mentor.name == "Emma Employer"

    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,name,role,timezone,groups\n"
        "new@example.test,New,agent,,\n"
        "amara@example.test,Dup,agent,,\n"
        "x@example.test,X,wizard,Mars/Olympus,\n"
    )
    page.goto(f"{live_server}/admin/people/import")
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".import-problems li")).to_have_count(2)
    shoot(page, "people-import-preview")

    amara = factory.user("agent", email="amara2@example.test", name="Amara Two")
    page.goto(f"{live_server}/admin/people/{amara.id}")
    page.get_by_role("link", name="Edit Amara Two's availability").click()
    expect(page.get_by_role("heading", name="Availability of Amara Two")).to_be_visible()
    shoot(page, "people-availability")
    page.goto(f"{live_server}/admin/people/{amara.id}")
    page.get_by_role("link", name="Deactivate…").click()
    shoot(page, "people-deactivate")
    page.get_by_role("button", name="Deactivate Amara Two").click()
    expect(page.get_by_role("button", name="Reactivate")).to_be_visible()
    shoot(page, "people-edit-deactivated")
