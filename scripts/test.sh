#!/usr/bin/env bash
# Quick start, part two: install what the tests need and run every check CI runs: ruff, mypy,
# the import contracts, and pytest (unit tests, then integration tests that start a real
# redis-server, real Celery worker processes, SQLite and a real PostgreSQL server, and the web
# app under uvicorn read by a real headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# PostgreSQL's server binaries for the fleet-database test, from the OS packages if missing.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries (initdb, pg_ctl) are needed: install the 'postgresql' package" >&2
    exit 1
  fi
fi
# Debian's Chromium for the web app's browser tests (Playwright drives it; its own browser
# download is not used), from the OS packages if missing.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is needed for the browser tests: install the 'chromium' package" >&2
    exit 1
  fi
fi
# PostgreSQL refuses to run as root; the tests then run it as this user.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home postgres
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
# Everything but the drills, two test files at a time (each integration file runs its own stack
# and mostly waits on it; the unit tests use the second core).
.venv/bin/pytest -m "not drill" -n 2 --dist loadfile "$@"
# The fault drills (kills, restarts, 200 cycles), each on its own stack, three at a time (they
# mostly wait on timeouts). Exit code 5 means the arguments selected no drill: not a failure.
.venv/bin/pytest -m drill -n 3 --dist loadfile "$@" || [ $? -eq 5 ]
# The benchmarks' smoke run: every part on small sizes, so that bench/ keeps working. It prints
# its figures and asserts nothing about time (machines differ; see bench/ and the README).
if [ $# -eq 0 ]; then
  .venv/bin/python -m bench --quick
fi
