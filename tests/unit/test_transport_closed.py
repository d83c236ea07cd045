"""A channel whose broker connection was closed under it says so as a connection error (which
Celery's consumer recovers from by reconnecting), never as an AttributeError that ends the
worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis

from shared.transport import GuardedChannel


def test_a_closed_transport_is_a_connection_error() -> None:
    """No connection settings left: redis' ConnectionError, one of the transport's connection
    errors."""
    channel = GuardedChannel.__new__(GuardedChannel)
    channel.connection = SimpleNamespace(client=None)
    with pytest.raises(redis.exceptions.ConnectionError, match="was closed"):
        channel._connparams()
