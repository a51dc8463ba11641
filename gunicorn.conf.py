"""gunicorn settings for Slotbook, read by ``gunicorn wsgi:app`` from the project folder.

Access logs print each request's path, query string and Referer, and visitors' manage,
confirm and poll links, set-password links and calendar feeds carry their secret in the path.
So the log-record rewrite of ``app.secret_links`` is installed here, in gunicorn's master
before it forks: every worker inherits it, and with it gunicorn's access and error logs show
``[redacted]`` where a token was (``/polls/answer/[redacted]``), in every format and file a
command line picks. Command-line options and ``GUNICORN_CMD_ARGS`` still override these.
"""

import os

from app.secret_links import install_log_redaction

install_log_redaction()

wsgi_app = "wsgi:app"
# The access log is on (standard output; "--access-logfile FILE" elsewhere): it is safe to keep.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
