"""gunicorn settings for Slotbook: ``gunicorn -c deploy/gunicorn.conf.py`` (the project
folder's ``gunicorn.conf.py`` loads this file, so a plain ``gunicorn wsgi:app`` started there
gets the same). Command-line options and ``GUNICORN_CMD_ARGS`` still override everything.

Secrets in logs: access logs print each request's path, query string and Referer, and
visitors' manage, confirm and poll links, set-password links and calendar feeds carry their
secret in the path. So the log-record rewrite of ``app.secret_links`` is installed here, in
gunicorn's master before it forks: every worker inherits it, and with it gunicorn's access and
error logs show ``[redacted]`` where a token was (``/polls/answer/[redacted]``), in every
format and file a command line picks.

Worker model: sync workers, ``WEB_CONCURRENCY`` of them (default 2 x CPUs + 1). Every request
is short: mail, calendar and webhook I/O happen in ``worker.py``, never in a request, and
outbound calls made in a request (adding a calendar is a background check) are bounded by
their own timeouts, so a sync worker is never parked on a slow third party for long.
NOTE: the load benchmark of the performance work (bench/, BENCHMARKS.md) may settle on
another model (gthread with N threads) and other numbers; change them here, in one place.
"""

import multiprocessing
import os
import sys
from pathlib import Path

# The project folder, so this file works from any directory (-c /srv/slotbook/deploy/...).
PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from app.secret_links import install_log_redaction  # noqa: E402 - needs the path above

install_log_redaction()

chdir = str(PROJECT)
wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
# A request that has not answered in 60 s is stuck (the slowest real one, a people import of
# the 5 MB maximum, takes seconds); its worker is restarted rather than left hanging.
timeout = 60
# systemd's stop and a deploy's restart let running requests finish for this long.
graceful_timeout = 30
# Behind a reverse proxy that keeps connections open to us.
keepalive = 5

# The access log is on (standard output; GUNICORN_ACCESS_LOG=FILE elsewhere): it is safe to
# keep. Each line ends with the time taken and the request id also sent as X-Request-ID.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms %({x-request-id}o)s'
)

# LOG_FORMAT=json: gunicorn's own lines become JSON objects too (app/gunicorn_logging.py).
if (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json":
    logger_class = "app.gunicorn_logging.JsonLogger"
