"""The backtest: the fleet's code over years of replayed history in one process, in seconds."""

from workshop.backtest.engine import BacktestResult, run_backtest
from workshop.backtest.report import build_report, write_report

__all__ = ["BacktestResult", "build_report", "run_backtest", "write_report"]
