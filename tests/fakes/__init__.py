"""Loopback fakes of the live sources, speaking each source's real wire format."""
