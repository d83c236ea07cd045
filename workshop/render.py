"""Text renderings of dispatches for the terminal (the web pages reuse the same markdown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from shared.calendar import NEW_YORK
from shared.contracts import Dispatch

if TYPE_CHECKING:
    from workshop.driver import ReplayStep
    from workshop.web.schema import CallStatus, DispatchList, DispatchSummary, DispatchView


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


def numbered_markdown(view: DispatchView, base_url: str = "") -> str:
    """A dispatch found by number: as above, with its call's status, the debate line and its
    permanent link (what `workshop dispatch N` prints and /read/N.md serves)."""
    d = view.dispatch
    debate = " | ".join(
        [f"Debate: {d.debate}", f"Conviction: {d.conviction:.0%}"]
        + [
            f"{m.mind.replace('_', ' ').title()}: "
            + (f"{m.confidence:.0%}" if m.status == "ok" else m.status)
            for m in d.minds
        ]
    )
    return (
        "\n\n".join(
            [
                f"No. {view.number} · " + dispatch_markdown(d),
                f"**Status:** {view.status.text}",
                "---",
                f"*{debate}*",
                f"Permanent link: {base_url.rstrip('/')}{view.url}",
            ]
        )
        + "\n"
    )


def short_call(item: DispatchSummary) -> str:
    """The call in a few characters, e.g. '↑ ^GSPC 24h 57%', or '–' for none."""
    return "–" if item.status.state == "no_call" else _terse(item)


def _terse(item: DispatchSummary) -> str:
    # call_line reads "↑ UP ^GSPC 24h from 2081.37, confidence 57%": keep arrow, target, horizon
    # and confidence, which is what fits in a column.
    words = item.call.split()
    if len(words) < 4:
        return item.call
    confidence = words[-1]
    return f"{words[0]} {words[2]} {words[3]} {confidence}"


def short_status(status: CallStatus) -> str:
    if status.state == "open":
        return status.text.replace("Open — ", "open, ").replace(
            "matured, waiting on the settling close", "settling"
        )
    if status.state in ("hit", "miss") and status.realized_move_pct is not None:
        return f"{status.state} {status.realized_move_pct:+.2f}%"
    return status.state.replace("_", " ")


def dispatch_table(listing: DispatchList) -> Table:
    """The list of dispatches as a table that fits an 80-column terminal (titles wrap)."""
    table = Table(
        title=f"Dispatches, newest first (page {listing.page} of {listing.pages})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="`workshop dispatch N` prints one",
    )
    table.add_column("No.", justify="right", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("title", ratio=1, overflow="fold", min_width=16)
    table.add_column("call", no_wrap=True, max_width=20)
    table.add_column("status", no_wrap=True, max_width=16)
    for item in listing.items:
        day = item.as_of.astimezone(NEW_YORK)
        table.add_row(
            str(item.number), f"{day:%Y-%m-%d}", item.title, short_call(item),
            short_status(item.status),
        )  # fmt: skip
    return table
