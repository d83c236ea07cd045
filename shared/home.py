"""Where the desk keeps its state, readable without the settings object: a command that only
looks at the stack's record (`workshop status`) starts without pydantic, most of its start-up.

The settings object (shared.settings) takes its default and its environment file from here, and
tests/unit/test_startup.py holds home_from_environment() equal to it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path(".workshop")
ENV_FILE = ".env"
STACK_FILE = "stack.json"  # the running stack's record, in the home
VARIABLE = "workshop_home"


def home_from_environment() -> Path | None:
    """The home Settings would read when only the process environment can set it: no .env file
    in the working folder. WORKSHOP_HOME, matched without regard to case as pydantic-settings
    matches it, else DEFAULT_HOME. None when a .env file exists or the variable is given under
    two spellings: the settings object decides then."""
    if Path(ENV_FILE).exists():
        return None
    given = [value for name, value in os.environ.items() if name.lower() == VARIABLE]
    if len(given) > 1:
        return None
    return Path(given[0]) if given else DEFAULT_HOME
