"""A cycle's cost at 100, 10,000 and 100,000 stored cycles: the desk's own code for one cycle
(ingest's claim and context, three minds, the synthesis' reads, composition and store, and the
resolver's pass), in process on SQLite, over real prices, after a synthetic history.

The history is a desk that cycled every 10 minutes before the first measured day: per cycle a
pooled forecast, a call or an abstention per source (some withheld by a rule), all settled, and
a lesson per settled call. It is written with bulk inserts and its aggregates built once (as a
database from before them would be), so that the measured cycles read what a long-running desk
reads. The floor each size answers to is the smallest size, measured in the same run.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import Figure, Report

TARGET = 1.2
SOURCES = ("synthesis", "macro", "flow", "contrarian")
REGIMES = ("risk_on", "risk_off", "chop", "crisis", "trending")
STEP = timedelta(minutes=10)


def seed(url: str, cycles: int, before: datetime, seed_value: int = 11) -> None:
    """Write `cycles` settled cycles ending before `before`, then build their aggregates."""
    from sqlalchemy import insert, update

    from shared.contracts import Fingerprint, Lesson
    from shared.db import record
    from shared.db.aggregates import DeskState
    from shared.db.models import (
        AbstentionRecord,
        Cycle,
        ForecastRecord,
        LessonRecord,
        PredictionRecord,
    )
    from shared.db.session import engine_for

    rng = random.Random(seed_value)  # noqa: S311 - synthetic data, not secrets
    start = before - STEP * (cycles + 200)
    rows: dict[str, list[dict[str, Any]]] = {"cycles": [], "predictions": [], "abstentions": [],
                                             "forecasts": [], "lessons": []}  # fmt: skip
    for n in range(cycles):
        key = f"history:{n}"
        made = start + STEP * n
        settled = made + timedelta(days=1)
        regime = rng.choice(REGIMES)
        rows["cycles"].append({"cycle_key": key, "as_of": made, "mode": "replay",
                               "status": "published", "claimed_at": made,
                               "launched_at": made})  # fmt: skip
        up = rng.random() < 0.53
        # One tape per cycle, as a cycle's lessons all rest on the tape it was made on.
        tape = Fingerprint(r5=0.1, vol=18.0, r5_cell=rng.randint(-3, 3), vol_cell=rng.randint(0, 4))
        rows["forecasts"].append({
            "cycle_key": key, "target": "^GSPC", "horizon_hours": 24, "reference_price": 2000.0,
            "made_at": made, "matures_at": settled, "regime": regime,
            "raw_probability_up": rng.uniform(0.4, 0.6), "probability_up": None,
            "base_rate_up": 0.53, "status": "settled", "went_up": up, "attempts": 0,
            "settled_at": settled, "settle_price": 2001.0,
        })  # fmt: skip
        for source in SOURCES:
            if rng.random() < 0.35:
                rows["abstentions"].append({"cycle_key": key, "source": source,
                                            "regime": regime, "reason": "-",
                                            "made_at": made})  # fmt: skip
                continue
            outcome = "hit" if rng.random() < 0.5 else "miss"
            rows["predictions"].append({
                "cycle_key": key, "source": source, "target": "^GSPC", "direction": "up",
                "horizon_hours": 24, "reference_price": 2000.0, "threshold": None,
                "confidence": rng.uniform(0.5, 0.7), "made_at": made, "matures_at": settled,
                "regime": regime, "topic": "index", "asset_class": "equity_index",
                "base_rate": 0.53, "payload": {}, "status": outcome, "attempts": 0,
                "settled_at": settled, "settle_price": 2001.0, "realized_move_pct": 0.05,
                "settle_reason": "-",
                "withheld_by": "flow|risk_off#1" if source == "flow" and regime == "risk_off"
                else None,
            })  # fmt: skip
            lesson = Lesson(cycle_key=key, source=source, target="^GSPC", regime=regime,
                            made_at=made, settled_at=settled, outcome=outcome, rested_on="-",
                            happened="-", would_change="-", fingerprint=tape)  # fmt: skip
            rows["lessons"].append({
                "cycle_key": key, "source": source, "target": "^GSPC", "regime": regime,
                "made_at": made, "settled_at": settled, "outcome": outcome,
                "r5_cell": tape.r5_cell, "vol_cell": tape.vol_cell,
                "payload": lesson.model_dump(mode="json"),
            })  # fmt: skip
    engine = engine_for(url)
    tables = {"cycles": Cycle, "predictions": PredictionRecord, "abstentions": AbstentionRecord,
              "forecasts": ForecastRecord, "lessons": LessonRecord}  # fmt: skip
    with engine.begin() as connection:
        for name, model in tables.items():
            for i in range(0, len(rows[name]), 20_000):
                connection.execute(insert(model), rows[name][i : i + 20_000])
        # Bulk inserts bypass the flush hook, as a database from before the aggregates did:
        # the first reader builds them (not measured).
        connection.execute(update(DeskState).values(built=False, record_through=None))
    from shared.db.session import session_scope

    with session_scope(url) as session:
        record.usable(session, None)
    # A desk that has run for months has had its write-ahead log checkpointed many times; a
    # history written in one go has not, and reads through a huge log would be the bench's cost.
    if url.startswith("sqlite"):
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _cycle(url: str, day: date, settings: Any, market: Any) -> dict[str, float]:
    """One cycle's own code, stage by stage, as the tasks run it (the broker left out)."""
    from services.ingest import cycle as cycles
    from services.minds.think import think
    from services.resolver.forecasts import settle_forecasts
    from services.resolver.lessons import record_lessons
    from services.resolver.resolve import settle_matured
    from services.synth.synthesize import synthesize
    from services.synth.tasks import _outputs, read_cycle, store_reading
    from shared.brain.factory import brain_from_settings
    from shared.calendar import replay_as_of
    from shared.contracts import CycleContext, CycleTrigger
    from shared.db.session import session_scope

    seconds: dict[str, float] = {}
    as_of = replay_as_of(day)
    started = time.perf_counter()
    with session_scope(url) as session:
        settle_matured(session, lambda m, d: market, as_of, max_attempts=3)
        record_lessons(session, [], settle_forecasts(session, lambda m, d: market, as_of,
                                                     max_attempts=3))  # fmt: skip
    seconds["resolver pass"] = time.perf_counter() - started
    started = time.perf_counter()
    trigger = cycles.parse_trigger(
        CycleTrigger(cycle_key=f"bench:{day}", as_of=as_of, mode="replay").model_dump(mode="json")
    )
    with session_scope(url) as session:
        assert not cycles.is_duplicate(session, trigger.cycle_key)
    snapshot = market.snapshot(trigger)
    features = market.features(snapshot)
    with session_scope(url) as session:
        snapshot = cycles.with_notes(session, snapshot)
        context = cycles.claim(session, trigger, snapshot, features)
    assert context is not None
    message = context.model_dump(mode="json")
    with session_scope(url) as session:
        cycles.mark_launched(session, trigger.cycle_key)
    seconds["ingest"] = time.perf_counter() - started
    started = time.perf_counter()
    brain = brain_from_settings(settings)
    results = [
        think(brain, mind, CycleContext.model_validate(message)).model_dump(mode="json")
        for mind in settings.minds
    ]
    seconds["three minds"] = time.perf_counter() - started
    started = time.perf_counter()
    reading = read_cycle(trigger.cycle_key, settings)
    assert reading is not None
    outputs = _outputs(results, settings.minds)
    dispatch = synthesize(
        reading.context, outputs, brain, expected_minds=settings.minds,
        horizon_hours=settings.horizon_hours, calibrator=reading.calibrator,
        rules=reading.rules, stories=reading.stories, recalled=reading.recalled,
    )  # fmt: skip
    assert store_reading(reading, dispatch, outputs, settings), "the cycle was stored"
    seconds["synthesis"] = time.perf_counter() - started
    seconds["cycle"] = sum(seconds.values())
    return seconds


def run(report: Report, *, quick: bool) -> None:
    import os

    # The synthesis' module builds the Celery app at import; nothing here talks to a broker.
    os.environ.setdefault("WORKSHOP_BROKER_URL", "redis://127.0.0.1:9/0")
    from shared.db.session import migrate
    from shared.market.opening import replay_market
    from shared.settings import Settings

    sizes = (100, 1_000) if quick else (100, 10_000, 100_000)
    measured = 5 if quick else 15
    market = replay_market(None)
    days = market.sessions(date(1900, 1, 1), date(2999, 12, 31))
    bench_days = days[-(measured + 1) :]
    first = datetime.combine(bench_days[0], datetime.min.time(), UTC)
    with tempfile.TemporaryDirectory(prefix="workshop-bench-history-") as tmp:
        desks: dict[int, tuple[str, Settings]] = {}
        for size in sizes:
            home = Path(tmp) / str(size)
            url = f"sqlite:///{home / 'desk.sqlite'}"
            migrate(url)
            started = time.perf_counter()
            seed(url, size, first)
            report.note(f"{size:,} stored cycles written in {time.perf_counter() - started:.1f} s")
            desks[size] = (url, Settings(home=home, database_url=url))
            _cycle(url, bench_days[0], desks[size][1], market)  # warm-up: imports, caches
        # Each measured day runs once on every desk in turn, so that the machine's drift (it is
        # shared) hits every size alike.
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for day in bench_days[1:]:
            for size, (url, settings) in desks.items():
                runs[size].append(_cycle(url, day, settings, market))
        floor: float | None = None
        for size in sizes:
            median = {k: statistics.median(r[k] for r in runs[size]) for k in runs[size][0]}
            value = median["cycle"] * 1000
            floor = floor if floor is not None else value
            stages = ", ".join(f"{k} {v * 1000:.1f}" for k, v in median.items() if k != "cycle")
            report.add(
                Figure(f"desk's own code per cycle, {size:,} stored cycles", value, floor, "ms",
                       "<=", TARGET, note=f"floor: {sizes[0]} stored; ms: {stages}")
            )  # fmt: skip
