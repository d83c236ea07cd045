"""Dispatches written without the model: the deterministic writer's words for a decision.

Used when the model cannot be asked or cannot be used (budget, a refused request, a refusal, an
invalid reply after its repair) and when the synthesis' retries of an unavailable model are spent:
the cycle still publishes, in words that state the decision by construction, and say why.
"""

from __future__ import annotations

from shared.brain.prompting import call_line, contradiction
from shared.brain.prose import write_dispatch
from shared.contracts import CycleContext, Deliberation, DispatchDraft, MindOutput, TokenUsage


def formatted_draft(
    deliberation: Deliberation,
    context: CycleContext,
    usage: TokenUsage | None = None,
    *,
    notice: str | None = None,
) -> DispatchDraft:
    """The dispatch in the deterministic writer's words, which state the decision by
    construction; with a notice (e.g. that the model was unavailable) before the final line."""
    title, body = write_dispatch(deliberation, context)
    if notice:
        line = call_line(deliberation)
        text = body.rstrip()
        if text.endswith(line):
            text = f"{text[: -len(line)].rstrip()}\n\n*{notice}*\n\n{line}"
        else:
            text = f"{text}\n\n*{notice}*"
        body = f"{text}\n"
    if contradiction(body, deliberation) is not None:
        body = f"{body.rstrip()}\n\n{call_line(deliberation)}\n"
    return DispatchDraft(title=title[:200], body_md=body, usage=usage)


class UnavailableModelWriter:
    """The Brain the synthesis falls back on when the model stayed unavailable through every
    retry: the deterministic writer's dispatch, saying so. It never calls the model."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def think(self, mind: str, context: CycleContext) -> MindOutput:
        return MindOutput.absent(mind, f"the model was unavailable: {self._reason}")

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        notice = (
            f"The model was unavailable ({self._reason}); the desk's deterministic writer "
            "wrote this dispatch from the same decision."
        )
        return formatted_draft(deliberation, context, notice=notice)
