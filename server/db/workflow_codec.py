"""The dispute workflow state to and from the JSON the database keeps."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from server.domain.disputes import DisputeState

_ADAPTER: TypeAdapter[DisputeState] = TypeAdapter(DisputeState)


def dump(state: DisputeState) -> dict[str, Any]:
    data: dict[str, Any] = _ADAPTER.dump_python(state, mode="json")
    return data


def load(data: dict[str, Any] | None) -> DisputeState:
    return _ADAPTER.validate_python(data or {})
