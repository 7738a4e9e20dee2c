"""The trace desk: what became of given messages (outcome, reply queued, or reasons)."""

from __future__ import annotations

from collections.abc import Sequence

from credmail.service.ports import MessageTraces, Trace

__all__ = ["Trace", "TraceDesk"]


class TraceDesk:
    def __init__(self, traces: MessageTraces) -> None:
        self.traces = traces

    def of(self, message_ids: Sequence[str]) -> dict[str, Trace]:
        """Every id gets a Trace; one never handled has no outcome."""
        found = self.traces.of(message_ids)
        return {message_id: found.get(message_id, Trace(message_id)) for message_id in message_ids}
