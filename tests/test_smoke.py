from tests.conftest import at, login


def test_manager_books_and_sees_detail(client, factory):
    """A booking manager signs in, books an agent and sees the booking's page with its audit."""
    manager = factory.user("booking-manager", email="bm@example.test")
    agent = factory.user("agent", name="Agent Smith")
    kind = factory.booking_type(requires_approval=True, name="Planning meeting")
    booking = factory.booking(manager, kind, at(2), [agent])
    login(client, "bm@example.test")
    page = client.get(f"/bookings/{booking.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Planning meeting" in html and "[PENDING]" in html and "Agent Smith" in html
    assert "created" in html
