"""Which event a status maps to, and whether this webhook should emit it."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from schemas.source import normalise_status
from zoho.fields import Module

DEFAULT_STATUS_MAP: Mapping[Module, Mapping[str, str]] = MappingProxyType(
    {
        Module.LEADS: MappingProxyType({"Pre-Qualified": "ConvertedLead"}),
        Module.DEALS: MappingProxyType({"Closed Won": "Purchase"}),
    }
)


def event_for_status(
    module: Module, status: str, overrides: Mapping[Module, Mapping[str, str]]
) -> str | None:
    """The event `status` maps to, with the source's overrides over the defaults.

    An override to "" switches a default off.
    """
    wanted = normalise_status(status)
    event = ""
    # The last name that matches wins, so an override beats the default.
    for table in (DEFAULT_STATUS_MAP.get(module, {}), overrides.get(module, {})):
        for name, mapped in table.items():
            if normalise_status(name) == wanted:
                event = mapped
    return event.strip() or None


@dataclass(frozen=True)
class RecordState:
    """What the pipeline remembers about one record, between webhooks."""

    last_status: str | None
    last_seen_at: datetime | None
    emitted: tuple[str, ...]

    @classmethod
    def empty(cls) -> "RecordState":
        return cls(last_status=None, last_seen_at=None, emitted=())

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict, for the Faust table."""
        return {
            "last_status": self.last_status,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "emitted": list(self.emitted),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "RecordState":
        """The state `to_json` stored; None (a record not seen yet) is the empty state."""
        if data is None:
            return cls.empty()
        last_status = data.get("last_status")
        last_seen_at = data.get("last_seen_at")
        emitted = data.get("emitted", [])
        if not (
            (last_status is None or isinstance(last_status, str))
            and (last_seen_at is None or isinstance(last_seen_at, str))
            and isinstance(emitted, list)
            and all(isinstance(name, str) for name in emitted)
        ):
            raise ValueError(f"not a stored record state: {data!r}")
        return cls(
            last_status=last_status,
            last_seen_at=datetime.fromisoformat(last_seen_at) if last_seen_at else None,
            emitted=tuple(emitted),
        )


@dataclass(frozen=True)
class StatusDecision:
    emit: str | None
    previous_status: str | None
    new_state: RecordState


def decide(
    state: RecordState, status: str, seen_at: datetime, event_name: str | None
) -> StatusDecision:
    """Emit each event at most once per record.

    Keyed on the event rather than on a status transition, so a record created directly
    in a mapped status converts, a repeat or a re-entry does not, and a replay after a
    mapping change emits the newly mapped event.
    """
    emit = event_name if event_name and event_name not in state.emitted else None
    emitted = (*state.emitted, emit) if emit else state.emitted
    in_order = state.last_seen_at is None or seen_at >= state.last_seen_at
    if not in_order:
        # A replayed older webhook must not rewind the record's current status, and
        # what came before it is no longer known.
        new_state = (
            state if not emit else RecordState(state.last_status, state.last_seen_at, emitted)
        )
        return StatusDecision(emit=emit, previous_status=None, new_state=new_state)
    return StatusDecision(
        emit=emit,
        previous_status=state.last_status,
        new_state=RecordState(last_status=status, last_seen_at=seen_at, emitted=emitted),
    )
