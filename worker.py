"""Background worker: RQ on Redis plus the periodic schedule (SPEC I3).

    python worker.py            run until stopped (Ctrl-C)
    python worker.py --burst    run every periodic job that is due, the due outbox rows and
                                whatever is queued, then exit (cron-style hosting)

Every worker process ticks the periodic schedule; a Redis claim per tick means a second
worker never doubles a periodic job (see ``app.jobs.tick``). A burst run takes part in the
same claims: run from cron every minute it runs each periodic job once a period, and never
a period that a long-running worker (or another burst) already ran.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from rq import SimpleWorker

from app import create_app
from app.extensions import db
from app.health import BEAT_EVERY_SECONDS, beat
from app.jobs import SCHEDULE, SYNC_QUEUE, queue, redis_connection, tick, use_app
from app.outbox import QUEUE_NAME, sweep

QUEUES = [QUEUE_NAME, "default", SYNC_QUEUE]
log = logging.getLogger("slotbook.worker")


def _ticker(connection, stop: threading.Event, every: float = BEAT_EVERY_SECONDS) -> None:
    """Tick the periodic schedule and beat the heartbeat ``/readyz`` reads (app/health.py)."""
    while not stop.is_set():
        try:
            beat(connection)
            tick(connection, schedule=SCHEDULE)
        except Exception:  # Redis blips must not kill the ticker thread
            log.exception("periodic tick failed")
        stop.wait(every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--burst", action="store_true", help="process what is due, then exit")
    args = parser.parse_args(argv)

    app = create_app()
    if not app.config.get("REDIS_URL"):
        # SLOTBOOK_NO_BACKGROUND_JOBS=1 (production), or a development setup without Redis.
        print("worker.py needs REDIS_URL: the worker takes its jobs from Redis.", file=sys.stderr)
        return 2
    use_app(app)  # jobs push their own app context around each run
    with app.app_context():
        # The worker's own client: RQ re-tunes its pool for blocking reads (see below).
        connection = redis_connection(app.config.get("REDIS_URL") or None)
        if args.burst:
            beat(connection)  # cron-style hosting: each run tells /readyz a worker is alive
            pushed = sweep()  # every pending row that is due, however new
            db.session.commit()
            log.info("burst: %d outbox message(s) queued", pushed)
            # Cron-style hosting has no ticker: this run is the tick.
            periodic = tick(connection, schedule=SCHEDULE)
            log.info("burst: periodic job(s) due: %s", ", ".join(periodic) or "none")
        db.session.remove()
    queues = [queue(name, connection) for name in QUEUES]
    if args.burst:
        SimpleWorker(queues, connection=connection).work(burst=True, logging_level="WARNING")
        beat(connection)  # and once more at the end, so a long run still counts from its end
        return 0
    # Build the worker before anything opens a pooled connection: RQ raises the pool's socket
    # timeout above its blocking dequeue time, and only connections opened after that get it.
    # A connection opened first (by the ticker) kept the 5 s timeout, so an idle worker quit.
    worker = SimpleWorker(queues, connection=connection)
    stop = threading.Event()
    threading.Thread(target=_ticker, args=(connection, stop), daemon=True).start()
    try:
        worker.work(with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
