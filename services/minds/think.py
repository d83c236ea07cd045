"""One mind thinking about one cycle: every expected failure becomes an absent mind with a reason.

A chord fails if one header raises, so only what a retry may fix escapes from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts import CycleContext, MindOutput
from shared.errors import TransientError
from shared.ports import Brain


class FireDrill(RuntimeError):
    """Raised inside a mind named in chaos_fail_minds, to exercise the absent path for real."""


def think(
    brain: Brain, mind: str, context: CycleContext, *, fail_on_purpose: Iterable[str] = ()
) -> MindOutput:
    """Ask the brain; turn any non-transient failure into MindOutput.absent with the reason."""
    try:
        if mind in set(fail_on_purpose):
            raise FireDrill(f"mind {mind} failed on purpose (chaos_fail_minds)")
        output = brain.think(mind, context)
    except TransientError:
        raise
    except Exception as error:  # the mind's process edge: record the failure, never sink the chord
        return MindOutput.absent(mind, f"{type(error).__name__}: {error}"[:500])
    if output.mind != mind:
        return MindOutput.absent(mind, f"brain answered as {output.mind!r}")
    return output
