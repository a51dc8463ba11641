# The flask command in this folder means the app factory (development unless SLOTBOOK_ENV says
# otherwise); wsgi.py is for gunicorn and defaults to production.
FLASK_APP=app:create_app
