"""gunicorn's own logs (access and error) as JSON lines when ``LOG_FORMAT=json``.

``deploy/gunicorn.conf.py`` names ``JsonLogger`` as gunicorn's ``logger_class`` then. It keeps
gunicorn's handlers, files and reopening on SIGUSR1, and only swaps their formatter for
``app.logs.JsonFormatter``, which reads the access line's atoms (method, path, status, bytes,
duration and the ``X-Request-ID`` the app answered) into fields of their own.
"""

from __future__ import annotations

from gunicorn import glogging

from app.logs import JsonFormatter


class JsonLogger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
