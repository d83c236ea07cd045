#!/usr/bin/env bash
# Quick start, part one: install, start the embedded stack (Redis on loopback, a Celery worker per
# service, beat), replay a stretch of real market history through it on the offline brain, then
# print the last dispatch and the scoreboard of settled calls, and stop the stack.
#   FROM / TO pick another range; DATA another replay directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
# The demo's own scratch space, started afresh each run so the replay really runs again (a
# cycle key that exists is, by design, never run twice). Set WORKSHOP_HOME to keep a history.
if [ -z "${WORKSHOP_HOME:-}" ]; then
  export WORKSHOP_HOME="$PWD/.workshop/demo"
  if [ -f "$WORKSHOP_HOME/stack.json" ]; then .venv/bin/workshop down >/dev/null 2>&1 || true; fi
  rm -rf "$WORKSHOP_HOME"
fi
FROM="${FROM:-2015-06-01}"
TO="${TO:-2015-09-15}"
workshop down >/dev/null 2>&1 || true
workshop up
trap 'workshop down' EXIT
workshop replay --from "$FROM" --to "$TO" ${DATA:+--data "$DATA"}
echo
echo "================================ the last dispatch ================================"
workshop dispatch --last
echo
workshop scoreboard
echo
echo "To read these dispatches in a browser: WORKSHOP_HOME=$WORKSHOP_HOME .venv/bin/workshop serve"
