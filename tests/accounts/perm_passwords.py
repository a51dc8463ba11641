"""Permission-table builders for the invitations, forgot password and /me/profile.

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there).

The set-password and forgot-password pages are public: the link's token is the credential, and
anybody may ask for a reset link. Their POSTs go to ``PUBLIC_POST_BUILDERS`` (sent with no
session by the CSRF sweep). ``/me/profile`` needs only a signed-in user and acts on that user.
"""

from __future__ import annotations

import itertools

from tests.conftest import PASSWORD

_numbers = itertools.count(1)


def fresh_link(app, purpose: str = "invite") -> tuple[int, str]:
    """A new person without a password and a live link for them: (user id, plaintext token).
    Written directly, as the outbox handler would (no mail needed for access tests)."""
    from app.accounts.passwords import issue_token
    from app.accounts.service import create_user
    from app.database import begin_write
    from app.extensions import db

    n = next(_numbers)
    with app.app_context():
        begin_write()
        user = create_user(f"invited{n}@example.test", f"Invited {n}", "agent")
        token = issue_token(user, purpose)
        db.session.commit()
        return user.id, token


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    Req = tables["Req"]  # noqa: N806 - the class, as named in the conftest

    def set_password_post(world):
        _, token = fresh_link(world.app)
        data = {"password": "a long new passphrase", "confirm": "a long new passphrase"}
        return [Req("set-password", "POST", f"/set-password/{token}", data, 303)]

    def forgot_password_post(world):
        return [Req("forgot-password", "POST", "/forgot-password", {"email": "x@example.test"})]

    def profile_page(world, holder, actor):
        return [Req("profile", "GET", "/me/profile")]

    def profile_save(world, holder, actor):
        data = {"name": f"Renamed {next(_numbers)}", "timezone": "Europe/Paris"}
        return [Req("profile:save", "POST", "/me/profile", data, 303)]

    def profile_password(world, holder, actor):
        # The same password again: it is re-hashed and other sessions end (a change), and
        # later requests of the sweep can still sign in with the fixtures' password.
        data = {"current_password": PASSWORD, "password": PASSWORD, "confirm": PASSWORD}
        return [Req("profile:password", "POST", "/me/profile/password", data, 303)]

    tables["PUBLIC_ENDPOINTS"].update({"passwords.set_password", "passwords.forgot_password"})
    tables["PUBLIC_POST_BUILDERS"].update(
        {
            "passwords.set_password": set_password_post,
            "passwords.forgot_password": forgot_password_post,
        }
    )
    tables["LOGIN_ONLY_BUILDERS"].update(
        {
            "profile.page": profile_page,
            "profile.save": profile_save,
            "profile.change_password": profile_password,
        }
    )
