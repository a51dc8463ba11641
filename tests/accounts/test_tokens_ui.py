"""API tokens in the browser (SPEC I1, issue [09]): /me/tokens makes a labelled token shown
once, lists tokens with created and last-used times, and revokes after a confirmation; a
revoked token gets 401 from the API; /admin/tokens (users.manage) shows and revokes
everyone's; somebody else's token id is a 404 for everyone else."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.accounts.models import ApiToken
from app.api.auth import flush_token_uses
from app.extensions import db
from app.security import hash_token
from tests.accounts.conftest import changed_tables, db_state
from tests.accounts.perm_tokens import own_token
from tests.conftest import csrf_from, login

TOKEN_RE = re.compile(r'id="new-token"[^>]*value="([^"]+)"')


def _create(client, label: str):
    token = csrf_from(client, "/me/tokens")
    return client.post("/me/tokens", data={"label": label, "csrf_token": token})


def _rows(app, user_id: int) -> list[ApiToken]:
    with app.app_context():
        rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)).all()
        db.session.expunge_all()
        return rows


def _api(app, plaintext: str):
    """An API read with only the bearer token (a fresh client: no session cookie)."""
    headers = {"Authorization": f"Bearer {plaintext}"}
    return app.test_client().get("/api/v1/booking-types", headers=headers)


def _revoke(client, token_id: int):
    token = csrf_from(client, "/me/tokens")
    return client.post(f"/me/tokens/{token_id}/revoke", data={"csrf_token": token})


def test_a_learner_makes_a_token_shown_once_and_it_opens_the_api(app, client, factory):
    """Everyone may use the API, so a learner too; only the hash is stored."""
    learner = factory.user("learner")
    login(client, learner.email)
    response = _create(client, "  Nightly   export ")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "you will not see it again" in page and "Copy token" in page
    plaintext = TOKEN_RE.search(page).group(1)
    [row] = _rows(app, learner.id)
    assert row.name == "Nightly export" and row.token_hash == hash_token(plaintext)
    assert row.hint == plaintext[-4:] and plaintext not in repr(vars(row))
    listing = client.get("/me/tokens").get_data(as_text=True)
    assert "Nightly export" in listing and plaintext not in listing and "Never" in listing
    assert _api(app, plaintext).status_code == 200


def test_a_token_needs_a_short_name(app, client, factory):
    agent = factory.user("agent")
    login(client, agent.email)
    empty = _create(client, "   ")
    assert empty.status_code == 422 and "Give the token a name" in empty.get_data(as_text=True)
    long = _create(client, "x" * 121)
    assert long.status_code == 422 and "120 characters" in long.get_data(as_text=True)
    assert _rows(app, agent.id) == []


def test_last_use_recorded_through_redis_shows_after_the_periodic_flush(app, client, factory):
    agent = factory.user("agent")
    login(client, agent.email)
    plaintext = TOKEN_RE.search(_create(client, "CI").get_data(as_text=True)).group(1)
    assert "Never" in client.get("/me/tokens").get_data(as_text=True)
    assert _api(app, plaintext).status_code == 200
    with app.app_context():
        assert flush_token_uses() == 1
    [row] = _rows(app, agent.id)
    assert row.last_used_at is not None
    assert "Never" not in client.get("/me/tokens").get_data(as_text=True)


def test_revoke_asks_first_then_the_api_refuses_the_token(app, client, factory):
    agent = factory.user("agent")
    login(client, agent.email)
    plaintext = TOKEN_RE.search(_create(client, "Laptop").get_data(as_text=True)).group(1)
    [row] = _rows(app, agent.id)
    confirm = client.get(f"/me/tokens/{row.id}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert _rows(app, agent.id)[0].revoked_at is None  # asking changes nothing
    response = _revoke(client, row.id)
    assert response.status_code == 303 and response.headers["Location"] == "/me/tokens"
    assert _rows(app, agent.id)[0].revoked_at is not None
    assert "Laptop" not in client.get("/me/tokens").get_data(as_text=True).split("</h1>", 1)[1]
    assert _api(app, plaintext).status_code == 401
    assert _revoke(client, row.id).status_code == 404  # already revoked: nothing to act on


def test_someone_elses_token_id_is_404_and_nothing_changes(app, client, factory):
    """IDOR: without users.manage another person's token looks like no token at all."""
    owner = factory.user("owner")
    token_id = own_token(app, owner.id, "Owner's script")
    for role in ("agent", "manager", "booking-manager", "learner", "employer"):
        other = factory.user(role)
        fresh = app.test_client()
        login(fresh, other.email)
        before = db_state(app)
        assert fresh.get(f"/me/tokens/{token_id}/revoke").status_code == 404, role
        assert _revoke(fresh, token_id).status_code == 404, role
        assert changed_tables(before, db_state(app)) == [], role
        assert "Owner's script" not in fresh.get("/me/tokens").get_data(as_text=True)
        assert fresh.get("/admin/tokens").status_code == 403, role
    assert _rows(app, owner.id)[0].revoked_at is None


def test_owner_sees_and_revokes_everyones_tokens(app, client, factory):
    owner = factory.user("owner", name="Olive Owner")
    agent = factory.user("agent", name="Aled Agent")
    token_id = own_token(app, agent.id, "Aled's sync")
    login(client, owner.email)
    assert "Everyone's API tokens" in client.get("/me/tokens").get_data(as_text=True)
    everyone = client.get("/admin/tokens").get_data(as_text=True)
    assert "Aled Agent" in everyone and "Aled&#39;s sync" in everyone
    confirm = client.get(f"/me/tokens/{token_id}/revoke").get_data(as_text=True)
    assert "of Aled Agent" in confirm
    response = _revoke(client, token_id)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/tokens"
    assert _rows(app, agent.id)[0].revoked_at is not None
    assert "Nobody has a live API token." in client.get("/admin/tokens").get_data(as_text=True)


def test_an_administrator_holds_users_manage_and_sees_everyones_too(app, client, factory):
    admin = factory.user("administrator")
    owner = factory.user("owner", name="Olive Owner")
    own_token(app, owner.id, "Owner's script")
    login(client, admin.email)
    assert "Olive Owner" in client.get("/admin/tokens").get_data(as_text=True)


def test_token_posts_need_the_csrf_token(app, client, factory):
    agent = factory.user("agent")
    token_id = own_token(app, agent.id)
    login(client, agent.email)
    before = db_state(app)
    assert client.post("/me/tokens", data={"label": "x"}).status_code == 400
    assert client.post(f"/me/tokens/{token_id}/revoke", data={}).status_code == 400
    assert (
        client.post(f"/me/tokens/{token_id}/revoke", data={"csrf_token": "forged"}).status_code
        == 400
    )
    assert changed_tables(before, db_state(app)) == []


def test_profile_and_header_link_to_the_tokens_page(app, client, factory):
    agent = factory.user("agent")
    login(client, agent.email)
    profile = client.get("/me/profile").get_data(as_text=True)
    assert profile.count('href="/me/tokens"') == 2  # header menu and the profile text
