"""The domain: roles and permissions, errors, and (later) the dispute workflow.

Nothing here imports aiohttp, socket.io or SQLAlchemy sessions.
"""
