"""Brains: the minds' reasoning and the synthesis' words, behind the shared.ports.Brain port.

OfflineBrain is the deterministic default; a model-backed brain lives beside it.
"""

from shared.brain.offline import MINDS, MindSpec, OfflineBrain

__all__ = ["MINDS", "MindSpec", "OfflineBrain"]
