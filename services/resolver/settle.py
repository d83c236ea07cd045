"""The resolver's judge: shared.judging, the one judge the backtest and the menu settle with."""

from __future__ import annotations

from shared.judging import GRACE, Judgement, judge

__all__ = ["GRACE", "Judgement", "judge"]
