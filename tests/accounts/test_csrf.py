"""Every state-changing route refuses a missing or wrong CSRF token and changes nothing."""

from __future__ import annotations

from tests.accounts.conftest import (
    BUILDERS,
    PUBLIC_POST_BUILDERS,
    SESSION_ONLY_POSTS,
    UNSAFE_METHODS,
    browser_rules,
    changed_tables,
    db_state,
)
from tests.conftest import csrf_from, login

ROUTE_ORDER = [e for e in BUILDERS if e != "accounts.logout"] + ["accounts.logout"]
LOGIN_IS_COVERED_BELOW = {"accounts.login"}


def _bad_tokens(other_session_token: str) -> dict[str, dict]:
    """Ways to send no token or a wrong one: form field or header, as keyword arguments."""
    return {
        "no token": {},
        "garbage token": {"form": "not-a-real-token"},
        "another session's token": {"form": other_session_token},
        "garbage header": {"headers": {"X-CSRFToken": "not-a-real-token"}},
        "empty token": {"form": ""},
    }


def _post(client, url, data, form=None, headers=None):
    body = dict(data)
    if form is not None:
        body["csrf_token"] = form
    return client.post(url, data=body, headers=headers or {})


def _is_csrf_refusal(response) -> bool:
    html = response.get_data(as_text=True)
    return response.status_code == 400 and "Your form expired" in html and "CSRF" in html


def test_unsafe_methods_are_only_post(app):
    """The sweep below posts; a PUT/PATCH/DELETE route would need its own case."""
    for rule in browser_rules(app):
        assert rule.methods & UNSAFE_METHODS <= {"POST"}, f"{rule.rule} accepts {rule.methods}"


def test_every_post_route_rejects_missing_or_wrong_token(app, factory, world):
    """Each POST route: no/garbage/foreign token -> 400 and no write; header token -> works."""
    owner = factory.user("owner", email="owner@example.test")
    client = app.test_client()
    login(client, owner.email)
    token = csrf_from(client, "/bookings")
    other_session_token = csrf_from(app.test_client(), "/login")
    assert other_session_token != token

    posts = [
        (e, req)
        for e in ROUTE_ORDER
        for req in BUILDERS[e](world, owner, owner)
        if req.method == "POST"
    ]
    covered = {e for e, _ in posts} | LOGIN_IS_COVERED_BELOW | set(PUBLIC_POST_BUILDERS)
    post_routes = {r.endpoint for r in browser_rules(app) if "POST" in r.methods}
    assert post_routes == covered, f"POST routes without a CSRF case: {post_routes - covered}"
    act_rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "bookings.act")
    acted = {req.url.rsplit("/", 1)[1] for e, req in posts if e == "bookings.act"}
    assert acted == act_rule._converters["action"].items

    failures = []
    for _endpoint, req in posts:
        before = db_state(app)
        for label, how in _bad_tokens(other_session_token).items():
            response = _post(client, req.url, req.data, **how)
            if not _is_csrf_refusal(response):
                failures.append(f"{req.label} with {label}: {response.status_code}")
        if changed := changed_tables(before, db_state(app)):
            failures.append(f"{req.label}: refused requests wrote to {changed}")
        if client.get("/bookings").status_code != 200:
            failures.append(f"{req.label}: a refused request signed the owner out")
        # The same request with the right token, sent the way HTMX sends it, goes through.
        response = _post(client, req.url, req.data, headers={"X-CSRFToken": token})
        if response.status_code != req.ok:
            failures.append(f"{req.label} with X-CSRFToken: {response.status_code}, want {req.ok}")
        elif not changed_tables(before, db_state(app)) and _endpoint not in SESSION_ONLY_POSTS:
            failures.append(f"{req.label} with X-CSRFToken: accepted but changed nothing")
    assert not failures, "\n".join(failures)
    assert client.get("/bookings").status_code == 302  # the last request was the logout


def test_login_rejects_missing_or_wrong_token(app, factory):
    """Signing in needs the login page's token (no login CSRF); the header form works too."""
    user = factory.user("agent", email="ada@example.test")
    client = app.test_client()
    token = csrf_from(client, "/login")
    other_session_token = csrf_from(app.test_client(), "/login")
    credentials = {"email": user.email, "password": "correct horse battery"}
    for label, how in _bad_tokens(other_session_token).items():
        response = _post(client, "/login", credentials, **how)
        assert _is_csrf_refusal(response), label
        assert client.get("/bookings").status_code == 302, f"signed in with {label}"
    response = _post(client, "/login", credentials, headers={"X-CSRFToken": token})
    assert response.status_code == 302 and response.headers["Location"] == "/calendar"  # staff
    assert client.get("/bookings").status_code == 200


def test_every_public_post_route_rejects_missing_or_wrong_token(app, world):
    """Public POST routes (token links, no sign-in): no/garbage/foreign token -> 400 and no
    write; the token from the visitor's own session works."""
    other_session_token = csrf_from(app.test_client(), "/login")
    failures = []
    for endpoint, builder in PUBLIC_POST_BUILDERS.items():
        for req in builder(world):
            client = app.test_client()
            token = csrf_from(client, "/login")
            before = db_state(app)
            for label, how in _bad_tokens(other_session_token).items():
                response = _post(client, req.url, req.data, **how)
                if not _is_csrf_refusal(response):
                    failures.append(f"{endpoint} {req.label} with {label}: {response.status_code}")
            if changed := changed_tables(before, db_state(app)):
                failures.append(f"{req.label}: refused requests wrote to {changed}")
            response = _post(client, req.url, req.data, headers={"X-CSRFToken": token})
            if response.status_code != req.ok:
                failures.append(f"{req.label} with X-CSRFToken: {response.status_code}")
            elif not changed_tables(before, db_state(app)):
                failures.append(f"{req.label} with X-CSRFToken: accepted but changed nothing")
    assert not failures, "\n".join(failures)
