"""Choosing the brain from the settings: offline by default, Claude when configured."""

from __future__ import annotations

from functools import cache

from shared.ports import Brain
from shared.settings import Settings


@cache
def brain_from_settings(settings: Settings) -> Brain:
    """One brain per process and settings (its clients and caches are reused across tasks)."""
    if settings.brain == "anthropic":
        from shared.brain.anthropic import build_brain

        return build_brain(settings, db_url=settings.db_url)
    from shared.brain.offline import OfflineBrain

    return OfflineBrain()
