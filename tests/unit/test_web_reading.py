"""The web app's pure parts: a call's status for a reader, slugs, safe markdown, the rolling
skill behind the track record's plot, its cache, and the plain verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import Dispatch, MindSummary, Prediction, ScoreLine, TrackRecord
from shared.db.models import PredictionRecord
from shared.records import AgainstBaselines
from workshop.web.app import score_tables, verdicts
from workshop.web.charts import ChartCache, rolling_series
from workshop.web.reading import SettledCall, call_status, slugify
from workshop.web.text import markdown_html

MADE = datetime(2015, 6, 1, 21, 30, tzinfo=UTC)
MATURES = datetime(2015, 6, 2, 20, 0, tzinfo=UTC)


def _dispatch(*, call: bool = True) -> Dispatch:
    prediction = Prediction(
        target="^GSPC", direction="up", horizon_hours=24, reference_price=2111.73,
        confidence=0.56, falsifier="a close at or below 2111.73", made_at=MADE,
        matures_at=MATURES, base_rate=0.53,
    )  # fmt: skip
    return Dispatch(
        cycle_key="replay:x:2015-06-01", cycle_number=7, as_of=MADE, title="A title",
        body_md="Body.", debate="divergent", conviction=0.2,
        minds=(MindSummary(mind="macro", status="ok", stance="bullish", confidence=0.3),),
        prediction=prediction if call else None,
        abstention=None if call else "no edge over the base rate",
    )  # fmt: skip


def _row(status: str = "open", **settled: object) -> PredictionRecord:
    return PredictionRecord(status=status, matures_at=MATURES, **settled)


def test_open_call_shows_the_time_left_on_the_desk_clock() -> None:
    """An open call shows the hours left until maturity, measured on the given clock."""
    status = call_status(_dispatch(), _row(), MATURES - timedelta(hours=18, minutes=20))
    assert status.state == "open"
    assert status.text == "Open — 18 h left"
    assert status.seconds_left == pytest.approx(18 * 3600 + 20 * 60)


def test_matured_unsettled_call_says_it_waits_on_the_close() -> None:
    """An open call past maturity says it waits on the settling close, never a negative time."""
    status = call_status(_dispatch(), _row(), MATURES + timedelta(hours=3))
    assert status.text == "Open — matured, waiting on the settling close"
    assert status.seconds_left == 0.0


def test_settled_calls_show_outcome_close_and_move() -> None:
    """A hit or a miss shows the settling close and the realised move; inconclusive its reason."""
    hit = _row("hit", settled_at=MATURES, settle_price=2114.07, realized_move_pct=0.11)
    status = call_status(_dispatch(), hit, MATURES)
    assert (status.state, status.text) == ("hit", "Hit: ^GSPC closed 2114.07 (+0.11%)")
    miss = _row("miss", settled_at=MATURES, settle_price=2100.0, realized_move_pct=-0.56)
    assert call_status(_dispatch(), miss, MATURES).text == "Miss: ^GSPC closed 2100.00 (-0.56%)"
    lost = _row("inconclusive", settled_at=MATURES, settle_reason="no price after maturity")
    assert call_status(_dispatch(), lost, MATURES).text == (
        "Inconclusive — no price after maturity"
    )


def test_abstention_is_no_call_with_its_reason() -> None:
    """A dispatch without a call is 'No call', carrying the abstention's reason."""
    status = call_status(_dispatch(call=False), None, MADE)
    assert (status.state, status.text) == ("no_call", "No call")
    assert status.reason == "no edge over the base rate"


def test_slugs_are_lowercase_ascii_words() -> None:
    """Titles become stable lower-case ASCII slugs; an empty one falls back to 'dispatch'."""
    assert slugify("^GSPC -2.1% in a Session, and I'm Not Guessing") == (
        "gspc-2-1-in-a-session-and-i-m-not-guessing"
    )
    assert slugify("Café <script>alert(1)</script>") == "cafe-script-alert-1-script"
    assert slugify("???") == "dispatch"
    assert len(slugify("word " * 40)) <= 80
    assert not slugify("word " * 40).endswith("-")


def test_markdown_from_a_model_keeps_raw_html_as_text() -> None:
    """Raw HTML in markdown is escaped and a javascript: link gets no href."""
    html = markdown_html("Note: <script>alert(1)</script> and [x](javascript:alert(1)) **b**")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "<strong>b</strong>" in html


def _calls(n: int, *, naive_from: int | None = None) -> list[SettledCall]:
    start = datetime(2015, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        hit = i % 3 != 0
        naive = 0.5 if naive_from is not None and i >= naive_from else None
        out.append(SettledCall("macro", start + timedelta(days=i), 0.6, 0.55, hit, naive))
    return out


def test_rolling_skill_is_brier_against_the_base_rate_over_the_window() -> None:
    """Each point is 1 - Brier/base-rate Brier over the last `window` calls."""
    calls = _calls(60)
    when, desk, naive = rolling_series(calls, window=30)
    assert len(when) == 60 - 19  # points start once 20 calls are in
    part = calls[-30:]
    mine = sum((0.6 - (1.0 if c.hit else 0.0)) ** 2 for c in part)
    base = sum((0.55 - (1.0 if c.hit else 0.0)) ** 2 for c in part)
    assert desk[-1] == pytest.approx(1 - mine / base)
    assert all(v is None for v in naive)


def test_rolling_naive_line_appears_only_where_every_call_carries_it() -> None:
    """The naive model's skill is drawn only for windows whose calls all carry its probability."""
    when, _, naive = rolling_series(_calls(60, naive_from=20), window=30)
    by_day = dict(zip(when, naive, strict=True))
    first_full = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(days=49)
    assert by_day[first_full - timedelta(days=1)] is None
    assert by_day[first_full] is not None


def test_chart_cache_draws_once_per_record_version() -> None:
    """A chart is drawn once per version of the record and again when the record changes."""
    cache = ChartCache()
    drawn: list[int] = []

    def draw() -> bytes:
        drawn.append(1)
        return b"png"

    for _ in range(3):
        cache.get("rolling", (1, 2, "x"), draw)
    cache.get("rolling", (1, 3, "y"), draw)
    assert (len(drawn), cache.draws) == (2, 2)


def test_verdicts_say_plainly_when_there_is_no_edge() -> None:
    """Each source's sentence gives its skill against every baseline with its standard error and
    says a tie is no edge; an edge is said only where it clears all three; cut lines never get a
    sentence of their own."""
    found = [
        AgainstBaselines("synthesis", 400, 0.18, 0.2, 0.02, 0.15, 0.02, 0.35),
        AgainstBaselines("macro", 100, 0.25, 0.01, 0.03, -0.002, 0.01, 0.45),
    ]
    said = verdicts(found)
    assert said == [
        "synthesis: 400 settled calls (Brier 0.180, skill vs the base rate +0.200 ± 0.020, skill"
        " vs the naive random walk +0.150 ± 0.020, always the majority 0.350): an edge over"
        " every baseline.",
        "macro: 100 settled calls (Brier 0.250, skill vs the base rate +0.010 ± 0.030, skill vs"
        " the naive random walk -0.002 ± 0.010, always the majority 0.450): no edge shown over"
        " the base rate (a tie within noise), the naive random walk (a tie within noise).",
    ]
    lines = (
        ScoreLine(source="macro", calls=100, hits=52, misses=48, brier_skill=0.01),
        ScoreLine(source="macro", regime="chop", calls=50, hits=30, misses=20, brier_skill=0.2),
    )
    tables = score_tables(TrackRecord(lines=lines))
    assert [t.id for t in tables] == ["overall", "by-regime"]
    assert [line.regime for line in tables[1].lines] == ["chop"]


def test_terminal_columns_show_the_call_and_status_in_a_few_characters() -> None:
    """`workshop dispatches` shows a call as arrow, target, horizon and confidence, and a status
    as its state with the time left or the realised move."""
    from workshop.render import short_call, short_status
    from workshop.web.schema import DispatchSummary

    dispatch = _dispatch()
    hit = _row("hit", settled_at=MATURES, settle_price=2114.07, realized_move_pct=0.11)
    item = DispatchSummary(
        number=3, slug="a-title", url="/read/3/a-title", cycle_number=7,
        cycle_key=dispatch.cycle_key, as_of=MADE, title="A title", call="…",
        prediction=dispatch.prediction, status=call_status(dispatch, hit, MATURES),
    )  # fmt: skip
    assert short_call(item) == "↑ ^GSPC 24h 56%"
    assert short_status(item.status) == "hit +0.11%"
    opened = call_status(dispatch, _row(), MATURES - timedelta(hours=5))
    assert short_status(opened) == "open, 5 h left"
    none = item.model_copy(update={"prediction": None})
    assert short_call(none) == "–"
    assert short_status(call_status(_dispatch(call=False), None, MADE)) == "no call"
