"""Names of the socket.io rooms that events go to."""


def socket_room(session_id: int) -> str:
    """Everyone in a session's live room."""
    return f"session:{session_id}"


def transcript_room(session_id: int) -> str:
    """Those watching a session's transcript as it is made."""
    return f"transcript:{session_id}"
