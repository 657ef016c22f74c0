"""Fixtures shared by the e2e tests: the demo server started in its own process group."""

from tests.e2e.test_dispute_flows import demo_server

__all__ = ["demo_server"]
