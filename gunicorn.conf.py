"""gunicorn reads this file when started from the project folder (``gunicorn wsgi:app``).

The settings live in ``deploy/gunicorn.conf.py`` (with the systemd units and the proxy example
beside them); this file only loads them, so both ways of starting gunicorn get the same
settings, above all the secret-link redaction of its logs.
"""

import runpy
from pathlib import Path

_settings = runpy.run_path(str(Path(__file__).resolve().parent / "deploy" / "gunicorn.conf.py"))
globals().update({name: value for name, value in _settings.items() if not name.startswith("__")})
