"""gunicorn settings for Slotbook: ``gunicorn -c deploy/gunicorn.conf.py`` (the project
folder's ``gunicorn.conf.py`` loads this file, so a plain ``gunicorn wsgi:app`` started there
gets the same). Command-line options and ``GUNICORN_CMD_ARGS`` still override everything.

Secrets in logs: access logs print each request's path, query string and Referer, and
visitors' manage, confirm and poll links, set-password links and calendar feeds carry their
secret in the path. So the log-record rewrite of ``app.secret_links`` is installed here, in
gunicorn's master before it forks: every worker inherits it, and with it gunicorn's access and
error logs show ``[redacted]`` where a token was (``/polls/answer/[redacted]``), in every
format and file a command line picks.

Worker model: gthread, ``WEB_CONCURRENCY`` processes (default one per CPU) of
``GUNICORN_THREADS`` threads (default 4), chosen by the load benchmark (bench/load.py, figures
below and in BENCHMARKS.md). Every request is short: mail, calendar and webhook I/O happen in
``worker.py``, never in a request, and outbound calls made in a request (adding a calendar is
a background check) are bounded by their own timeouts.
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
# --- worker model (issue [14], bench/load.py; figures in BENCHMARKS.md) ---------------------
# gthread: one process per CPU, 4 threads each. Measured on loopback against PostgreSQL on a
# 2-core machine (load average 6-12 from other work), 8 clients, 7 s per endpoint, two runs:
# public picker 6.1 / 7.6 req/s with sync (5 workers) against 6.9 / 14.9 with gthread
# (2 x 4); /api/v1/availability 4.6 / 11.0 against 11.7 / 26.9; p50 of the availability
# 1538 / 736 ms against 607 / 253 ms. A request waits on PostgreSQL and Redis for part of its
# time, which threads overlap; fewer processes also compete less for two cores.
# WEB_CONCURRENCY still sets the number of processes, GUNICORN_THREADS the threads in each.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# --- end of worker model ------------------------------------------------------------------
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
