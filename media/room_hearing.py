"""The hearing's own states (庭审): waiting -> in session <-> paused -> closed.

Start, stop and every interruption are logged with their times (庭审录音录像规定);
a pause says why.
"""

from __future__ import annotations

from media.room_types import ALLOWED_PAUSE_REASONS, N_, HearingState, RoomRefused

HEARING_ACTIONS: tuple[str, ...] = ("start", "pause", "resume", "close")

# action -> (states it may start from, state it leads to, refusal when illegal)
_MOVES: dict[str, tuple[frozenset[HearingState], HearingState, str]] = {
    "start": (
        frozenset({HearingState.WAITING}),
        HearingState.IN_SESSION,
        N_("The hearing has already started."),
    ),
    "pause": (
        frozenset({HearingState.IN_SESSION}),
        HearingState.PAUSED,
        N_("Only a hearing in session can be paused."),
    ),
    "resume": (
        frozenset({HearingState.PAUSED}),
        HearingState.IN_SESSION,
        N_("Only a paused hearing can be resumed."),
    ),
    "close": (
        frozenset({HearingState.IN_SESSION, HearingState.PAUSED}),
        HearingState.CLOSED,
        N_("The hearing cannot be closed before it has started."),
    ),
}

HEARING_CLOSED = N_("The hearing is closed.")


def next_hearing_state(state: HearingState, action: str, reason: str = "") -> HearingState:
    """The state ``action`` leads to from ``state``; :class:`RoomRefused` when illegal."""
    move = _MOVES.get(action)
    if move is None:
        raise RoomRefused("invalid", N_("Unknown hearing action %(action)s."), action=action)
    sources, target, refusal = move
    if state is HearingState.CLOSED:
        raise RoomRefused("conflict", HEARING_CLOSED)
    if state not in sources:
        raise RoomRefused("conflict", refusal)
    if action == "pause" and reason not in ALLOWED_PAUSE_REASONS:
        raise RoomRefused(
            "invalid",
            N_("Say why the hearing is paused: recess, evidence not in public, or mediation."),
        )
    return target
