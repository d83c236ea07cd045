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
    mark = {"up": "↑", "down": "↓", "inside": "↔", "outside": "⇹"}.get(call.direction, "·")
    edge = f" vs base rate {call.base_rate:.0%}" if call.base_rate is not None else ""
    naive = f", naive {call.naive_probability:.0%}" if call.naive_probability is not None else ""
    return f"{mark} {call.kind}: {call.wording}, confidence {call.confidence:.0%}{edge}{naive}"


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


def debate_line(d: Dispatch) -> str:
    """e.g. 'Debate: divergent | Conviction: 34% | Macro: 25% | Flow: 50% | Contrarian: absent'."""
    parts = [f"Debate: {d.debate}", f"Conviction: {d.conviction:.0%}"]
    for m in d.minds:
        name = m.mind.replace("_", " ").title()
        parts.append(f"{name}: {m.confidence:.0%}" if m.status == "ok" else f"{name}: {m.status}")
    return " | ".join(parts)


def numbered_markdown(view: DispatchView, base_url: str = "") -> str:
    """A dispatch found by number: as above, with its call's status, the debate line and its
    permanent link (what `workshop dispatch N` prints and /read/N.md serves)."""
    d = view.dispatch
    debate = debate_line(d)
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


MARKS = {"up": "↑", "down": "↓", "inside": "↔", "outside": "⇹"}


def short_call(item: DispatchSummary) -> str:
    """The call in a few characters, e.g. '↑ ^GSPC 24h 57%', or '–' for none."""
    call = item.prediction
    if call is None:
        return "–"
    return (
        f"{MARKS.get(call.direction, '·')} {call.target} {call.horizon_hours}h "
        f"{call.confidence:.0%}"
    )


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
