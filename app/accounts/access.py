"""Route guard: signed in, and holding a permission (checked on the server, not in templates)."""

from __future__ import annotations

import functools

from flask import abort
from flask_login import current_user, login_required


def permission_required(permission: str):
    def decorate(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # read by the permission-matrix test
        return wrapper

    return decorate
