"""The privacy desk: what is held about an address; erase it on request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from credmail.core.addresses import AddressError, normalize_address
from credmail.service import privacy
from credmail.service.desks.base import DeskError
from credmail.service.ports import Clock, UnitOfWorkFactory
from credmail.service.review import Actor


@dataclass(frozen=True)
class Held:
    """Everything stored about one address, JSON-ready (directory, review, outbox, tokens)."""

    address: str
    details: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return dict(self.details)


@dataclass(frozen=True)
class Erasure:
    """How many records of each kind were erased."""

    counts: Mapping[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"erased": dict(self.counts)}


class PrivacyDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        after_erase: Callable[[], None] = lambda: None,
    ) -> None:
        """`after_erase` runs after the commit (SQLite: fold the WAL so nothing lingers)."""
        self.uow, self.clock, self.after_erase = uow, clock, after_erase
        self.log = structlog.get_logger("credmail.desks.privacy")

    def show(self, address: str) -> Held:
        key = _key(address)
        with self.uow(read_only=True) as uow:
            return Held(key, privacy.show(uow, key, self.clock()))

    def forget(self, address: str, actor: Actor) -> Erasure:
        key = _key(address)
        with self.uow() as uow:
            counts = privacy.forget(uow, key)
            uow.commit()
        self.after_erase()
        self.log.debug("privacy.forget", by=str(actor), **counts)
        return Erasure(counts)


def _key(address: str) -> str:
    try:
        return normalize_address(address)
    except AddressError as exc:
        raise DeskError(str(exc)) from None
