"""Choosing the brain from the settings: offline by default, Claude when configured."""

from __future__ import annotations

from shared.ports import Brain
from shared.settings import Settings

# One brain per process and settings object: its clients and caches are reused across tasks.
# Keyed by identity because Settings holds unhashable values (per-mind model maps).
_BRAINS: dict[int, tuple[Settings, Brain]] = {}


def brain_from_settings(settings: Settings) -> Brain:
    cached = _BRAINS.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    brain: Brain
    if settings.brain == "anthropic":
        from shared.brain.anthropic import build_brain

        brain = build_brain(settings, db_url=settings.db_url)
    else:
        from shared.brain.offline import OfflineBrain

        brain = OfflineBrain()
    _BRAINS[id(settings)] = (settings, brain)
    return brain
