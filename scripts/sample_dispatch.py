"""Print one dispatch of the demo's replay, written by the offline brain, as the README shows it.

Runs the fleet's own code in one process (the backtest engine: no broker, no database) over the
demo's range and prints the title and body of the chosen session's dispatch. The README's example
is this script's output, pasted: rerun it to refresh the example after the writer changes.

    .venv/bin/python scripts/sample_dispatch.py [--day 2015-08-24] [--from 2015-06-01]
                                                [--to 2015-09-15] [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from shared.brain.offline import OfflineBrain
from shared.contracts import CycleContext, Deliberation, DispatchDraft
from workshop.backtest.engine import run_backtest


class _Keeping(OfflineBrain):
    """The offline brain, keeping each session's words."""

    def __init__(self) -> None:
        super().__init__()
        self.drafts: dict[date, DispatchDraft] = {}

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        draft = super().write(deliberation, context)
        self.drafts[context.features.session] = draft
        return draft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2015, 8, 24))
    parser.add_argument("--from", dest="start", type=date.fromisoformat, default=date(2015, 6, 1))
    parser.add_argument("--to", dest="end", type=date.fromisoformat, default=date(2015, 9, 15))
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.start <= args.day <= args.end:
        parser.error(f"--day {args.day} is outside --from {args.start} --to {args.end}")
    brain = _Keeping()
    run_backtest(args.data, args.start, args.end, brain=brain)
    draft = brain.drafts.get(args.day)
    if draft is None:
        print(f"{args.day} is not a session of this replay", file=sys.stderr)
        return 2
    print(f"# {draft.title}\n\n{draft.body_md}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
