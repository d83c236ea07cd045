"""The contracts the deciding code builds without validation (shared.trusted) are the ones
validation would have built: field for field, down to each value's type and the fields set."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel

from services.synth import synthesize
from services.synth.deliberate import deliberate
from shared.contracts import SYNTHESIS, CycleContext, Deliberation
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir
from workshop.backtest import run_backtest


def _validated(item: BaseModel) -> BaseModel:
    """item built again through validation, from the fields it records as given."""
    return type(item)(**{name: getattr(item, name) for name in item.model_fields_set})


def _same(item: BaseModel) -> None:
    again = _validated(item)
    assert item == again
    assert item.model_fields_set == again.model_fields_set
    for name in type(item).model_fields:
        assert type(getattr(item, name)) is type(getattr(again, name)), name


def test_what_the_desk_builds_unvalidated_is_what_validation_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over the replay's last 60 sessions: every call the ledger holds (the desk's menu calls and
    the minds' own), every lesson written as calls settled, every memory the last cycles
    recalled, the records read, the menu candidates the last dispatches show, and every cycle's
    context and deliberation with its minds' summaries."""
    contexts: list[CycleContext] = []
    decisions: list[Deliberation] = []

    def kept(context: CycleContext, *args: Any, **kwargs: Any) -> Deliberation:
        contexts.append(context)
        decisions.append(deliberate(context, *args, **kwargs))
        return decisions[-1]

    monkeypatch.setattr(synthesize, "deliberate", kept)
    directory = sample_data_dir()
    market = ReplayMarket(load_replay(directory))
    sessions = market.sessions(date(1900, 1, 1), date(2999, 12, 31))
    result = run_backtest(directory, sessions[-60], sessions[-1], market=market)
    calls = [s.prediction for s in result.ledger.settled if s.source in (SYNTHESIS, *result.minds)]
    lessons = [
        lesson
        for cell in result.ledger.lessons.cells.values()
        for cycle in cell.values()
        for lesson in cycle.lessons
    ]
    assert result.last_dispatch is not None
    memories = list(result.last_dispatch.recalled)
    assert result.last_call is not None
    menu = [
        x
        for dispatch in (result.last_dispatch, result.last_call)
        for x in (dispatch.chosen, dispatch.closest)
        if x is not None
    ]
    assert result.last_call.chosen in menu
    assert {call.source for call in calls} >= {SYNTHESIS, *result.minds}
    assert lessons
    assert memories
    as_of = result.last_dispatch.as_of
    records = [result.ledger.record(as_of), result.ledger.evidence_record(as_of)]
    assert all(record.lines for record in records)
    assert len(contexts) == len(decisions) == 60
    summaries = [summary for decision in decisions for summary in decision.minds]
    for item in (*calls, *lessons, *memories, *records, *menu, *contexts, *decisions, *summaries):
        _same(item)
