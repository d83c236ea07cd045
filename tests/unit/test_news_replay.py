"""A replay of the shipped 2015 headlines yields dispatches quoting them, attributed and dated."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime

from shared.brain.offline import OfflineBrain
from shared.contracts import CycleContext, Deliberation, DispatchDraft, MindOutput
from shared.market import sample_data_dir
from workshop.backtest import run_backtest

QUOTED = re.compile(
    r'headline \(untrusted text, Wikipedia Current events portal, (\d{4}-\d{2}-\d{2})\): "([^"]+)"'
)


class RecordingBrain:
    """The offline brain, keeping every dispatch body it writes (the words the desk publishes)."""

    name = "offline"

    def __init__(self) -> None:
        self.inner = OfflineBrain()
        self.bodies: list[tuple[datetime, str]] = []

    def think(self, mind: str, context: CycleContext) -> MindOutput:
        return self.inner.think(mind, context)

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        draft = self.inner.write(deliberation, context)
        self.bodies.append((context.snapshot.as_of, draft.body_md))
        return draft


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def test_a_replay_of_real_headlines_cites_them_in_its_dispatches() -> None:
    """Replaying 2015-06-01..2015-09-15 with the shipped news.csv, many dispatches quote a headline
    that exists in the file, published on the date given and before the cycle's as_of."""
    with (sample_data_dir() / "news.csv").open(encoding="utf-8") as handle:
        titles = {(r["published_at"][:10], _norm(r["title"])) for r in csv.DictReader(handle)}
    brain = RecordingBrain()
    result = run_backtest(None, date(2015, 6, 1), date(2015, 9, 15), brain=brain, write_every=True)
    assert result.cycles == len(brain.bodies) == 75
    citing = 0
    for as_of, body in brain.bodies:
        quotes = QUOTED.findall(body)
        citing += bool(quotes)
        for day, text in quotes:
            assert date.fromisoformat(day) < as_of.date()
            prefix = _norm(text.removesuffix(" ..."))
            assert any(d == day and t.startswith(prefix) for d, t in titles), text
    assert citing >= 25
