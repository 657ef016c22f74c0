"""Yizhan server: the aiohttp app, configuration, CLI, domain, database and audit log."""

__version__ = "0.1.0"
