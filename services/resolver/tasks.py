"""The resolver's Celery adapter: a periodic (beat) task and an on-demand one share this."""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.orm.exc import StaleDataError

from services.resolver.forecasts import settle_forecasts
from services.resolver.lessons import record_lessons
from services.resolver.resolve import settle_matured
from services.resolver.wiring import markets
from shared import tasknames
from shared.calendar import utc_now
from shared.celery_app import app, settings_of
from shared.db.session import serialize_writers, session_scope
from shared.errors import BadInputError
from shared.moments import check_moment
from shared.tasking import STORAGE_RETRY, rejected

log = structlog.get_logger("resolver")


@app.task(name=tasknames.SETTLE, bind=True, **STORAGE_RETRY)
def settle(self: Any, now: Any = None) -> dict[str, Any]:
    """Settle what has matured by `now` (the replay clock when given, else the wall clock)."""
    started = time.perf_counter()
    settings = settings_of(app)
    try:
        moment = check_moment(now, "now") if now is not None else utc_now()
    except ValueError as error:
        rejected(str(error), task=tasknames.SETTLE)
        raise BadInputError(str(error)) from None
    try:
        with session_scope(settings.db_url) as session:
            # Settles take turns: a second one waits, then finds the first one's calls settled.
            serialize_writers(session, "resolver.settle")
            report = settle_matured(
                session, markets(settings), moment, max_attempts=settings.resolver_max_attempts
            )
            forecasts = settle_forecasts(
                session, markets(settings), moment, max_attempts=settings.resolver_max_attempts
            )
            lessons = record_lessons(session, report.resolutions, forecasts)
    except StaleDataError:
        # Another pass settled some of these calls first (a call's status is checked by its
        # UPDATE): this pass's transaction rolled back whole, and the next pass finds the rest.
        log.info("resolver.raced", task_id=self.request.id, now=moment.isoformat())
        return {"settled": 0, "waiting": 0, "raced": True}
    counts: dict[str, int] = {}
    for resolution in report.resolutions:
        counts[resolution.outcome] = counts.get(resolution.outcome, 0) + 1
    log.info(
        "resolver.settled",
        task_id=self.request.id,
        now=moment.isoformat(),
        settled=len(report.resolutions),
        waiting=report.waiting,
        forecasts=len(forecasts),
        lessons=lessons,
        errors=report.errors[:5],
        seconds=round(time.perf_counter() - started, 4),
        **counts,
    )
    return {"settled": len(report.resolutions), "waiting": report.waiting, **counts}
