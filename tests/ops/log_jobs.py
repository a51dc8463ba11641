"""An RQ job for tests/ops/test_logs.py: it logs from inside a job, so the JSON line of that
record must carry the job's id. Imported by the worker by its dotted name."""

from __future__ import annotations

import logging


def log_from_a_job(text: str) -> str:
    logging.getLogger("slotbook.probe").warning("job says %s", text)
    return text
