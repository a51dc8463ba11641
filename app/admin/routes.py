"""Owner and administrator screens: setting a password for someone, and the role matrix."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts.access import permission_required
from app.accounts.forms import PasswordResetForm
from app.accounts.models import Permission, Role, User
from app.accounts.permissions import OWNER_LOCKED, Perm
from app.accounts.service import AccountError, can_manage, set_role_permissions
from app.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@permission_required(Perm.USERS_MANAGE)
def users():
    """The old users list: the people screens replace it (kept so old links still work)."""
    return redirect(url_for("people.index"))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@permission_required(Perm.USERS_MANAGE)
def reset_password(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if not can_manage(current_user, user):
        abort(403)
    form = PasswordResetForm()
    if form.validate_on_submit():
        user.set_password(form.password.data)  # also ends the user's sessions
        db.session.commit()
        flash(f"{user.name}'s password was changed and their sessions were ended.", "success")
        return redirect(url_for("people.edit", person_id=user.id))
    status = 400 if form.errors else 200
    return render_template("admin/reset_password.html", form=form, person=user), status


@bp.route("/roles", methods=["GET", "POST"])
@permission_required(Perm.ROLES_MANAGE)
def roles():
    all_roles = db.session.scalars(select(Role).order_by(Role.id)).all()
    permissions = db.session.scalars(select(Permission).order_by(Permission.id)).all()
    if request.method == "POST":
        try:
            # Only roles that were on the submitted page: one added since keeps its rights.
            shown = set(request.form.getlist("roles-shown"))
            for role in all_roles:
                if str(role.id) in shown:
                    set_role_permissions(role, set(request.form.getlist(f"role-{role.id}")))
        except AccountError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("admin.roles")), 303
        db.session.commit()
        flash("Role permissions saved.", "success")
        return redirect(url_for("admin.roles"))
    locked = {p.value for p in OWNER_LOCKED}
    return render_template(
        "admin/roles.html", roles=all_roles, permissions=permissions, locked=locked
    )
