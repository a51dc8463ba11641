"""Production entry point: ``gunicorn wsgi:app``. Production mode unless told otherwise."""

import gc
import os

os.environ.setdefault("SLOTBOOK_ENV", "production")

from app import create_app

app = create_app()

# What start-up made (the app, SQLAlchemy's, Jinja's and pydantic's tables: ~157,000 objects)
# lives as long as the process. Frozen, it is out of the cyclic collector's reach: a full
# collection, which CPython runs every few hundred requests and which stops every thread of
# the worker while it walks, then walks only what requests made (70 ms before, under 1 ms
# after, measured in BENCHMARKS.md). Each gunicorn worker imports this file after its fork.
gc.freeze()
