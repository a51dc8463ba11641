"""Production entry point: ``gunicorn wsgi:app``. Production mode unless told otherwise."""

import os

os.environ.setdefault("SLOTBOOK_ENV", "production")

from app import create_app

app = create_app()
