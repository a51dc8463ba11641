"""Permission-table builders for API tokens in the browser (/me/tokens, /admin/tokens).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py``. ``/me/tokens`` needs only a signed-in user: everyone may use
the API, so everyone may hold tokens; revoking acts on a token of the sender's own (someone
else's id is a 404, tested in ``tests/accounts/test_tokens_ui.py``). Everyone's list needs
``users.manage``.
"""

from __future__ import annotations

import itertools

from app.accounts.permissions import Perm

_numbers = itertools.count(1)


def own_token(app, user_id: int, label: str = "Script") -> int:
    """A live token of ``user_id``, made as the CLI makes it; returns its id."""
    from app.accounts import tokens
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    with app.app_context():
        begin_write()
        row, _ = tokens.create_token(db.session.get(User, user_id), label)
        db.session.commit()
        return row.id


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    Req = tables["Req"]  # noqa: N806 - the class, as named in the conftest

    def page(world, holder, actor):
        return [Req("tokens:page", "GET", "/me/tokens")]

    def create(world, holder, actor):
        data = {"label": f"Sweep script {next(_numbers)}"}
        return [Req("tokens:create", "POST", "/me/tokens", data)]

    def revoke_confirm(world, holder, actor):
        token_id = own_token(world.app, (actor or world.other).id)
        return [Req("tokens:revoke-get", "GET", f"/me/tokens/{token_id}/revoke")]

    def revoke(world, holder, actor):
        token_id = own_token(world.app, (actor or world.other).id)
        return [Req("tokens:revoke", "POST", f"/me/tokens/{token_id}/revoke", {}, 303)]

    def everyone(world, holder, actor):
        return [Req("tokens:everyone", "GET", "/admin/tokens", permission=Perm.USERS_MANAGE)]

    tables["LOGIN_ONLY_BUILDERS"].update(
        {
            "tokens.page": page,
            "tokens.create": create,
            "tokens.revoke_confirm": revoke_confirm,
            "tokens.revoke": revoke,
        }
    )
    tables["GUARDED_PERMISSIONS"]["tokens.everyone"] = Perm.USERS_MANAGE
    tables["GUARDED_BUILDERS"]["tokens.everyone"] = everyone
