#!/usr/bin/env bash
# The benchmarks from a fresh clone: install (bootstrap), then print every figure beside the bare
# figure or floor it answers to, as a ratio measured in the same run. Arguments go to the bench:
#   bash scripts/bench.sh               every figure (about N minutes on 2 cores)
#   bash scripts/bench.sh --quick       the smoke run CI does (small sizes, no verdict on time)
#   bash scripts/bench.sh --only fleet  one part (startup, resolver, backtest, history, fleet)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m bench "$@"
