"""Routes of the dispute workflow: applications (being written)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Add this module's routes."""
