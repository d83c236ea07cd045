"""The `workshop` command's entry point: `workshop status` here, everything else in workshop.cli.

`workshop status` is what people and scripts poll to see whether the stack is up, and its answer
needs only the settings and the stack's record: here it runs without the command-line framework
(typer, which builds every command's parser first) or rich's renderers, most of a light command's
start-up. Every other command, and status with any argument (`--help`), goes to workshop.cli.
"""

from __future__ import annotations

import sys


def show_status() -> int:
    """Print which processes of the embedded stack are alive; the exit status (1: none running,
    or one is down)."""
    from shared.home import home_from_environment
    from workshop import stack

    # The stack's folder without the settings object when only the environment can set it:
    # pydantic is most of a light command's start-up.
    home = home_from_environment()
    if home is not None:
        alive = stack.status(stack.HomeOnly(home))
    else:
        from shared.settings import load_settings

        alive = stack.status(load_settings())
    if not alive:
        print("no stack is running")
        return 1
    for name, ok in alive.items():
        print(f"{name:10} {'up' if ok else 'DOWN (workshop up restarts it)'}")
    return 0 if all(alive.values()) else 1


def main() -> None:
    if sys.argv[1:] == ["status"]:
        try:
            code = show_status()
        except Exception:
            # A failure (bad settings, an unreadable record) is reported as every command
            # reports it: status is read-only, so asking again there is harmless.
            code = None
        if code is not None:
            sys.exit(code)
    from workshop.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
