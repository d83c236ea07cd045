"""Text renderings of dispatches for the terminal (the web pages reuse the same markdown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.calendar import NEW_YORK
from shared.contracts import Dispatch

if TYPE_CHECKING:
    from workshop.driver import ReplayStep


def call_line(dispatch: Dispatch) -> str:
    call = dispatch.prediction
    if call is None:
        return f"no call: {dispatch.abstention}"
    arrow = "↑ UP" if call.direction == "up" else "↓ DOWN"
    return (
        f"{arrow} {call.target} {call.horizon_hours}h from {call.reference_price:.2f}, "
        f"confidence {call.confidence:.0%}"
    )


def dispatch_markdown(dispatch: Dispatch) -> str:
    """The dispatch as a reader sees it: masthead, title, body, the call, the debate line."""
    local = dispatch.as_of.astimezone(NEW_YORK)
    masthead = f"WORKSHOP DESK · {local:%b %d, %Y · %H:%M} New York"
    return "\n\n".join([masthead, f"# {dispatch.title}", dispatch.body_md.strip(),
                        f"**Call:** {call_line(dispatch)}"])  # fmt: skip


def step_line(step: ReplayStep) -> str:
    d = step.dispatch
    return (
        f"{step.day}  cycle {d.cycle_number:>4}  {d.regime:9} {d.debate:16} "
        f"settled {step.settled:>2}  {call_line(d)}"
    )
