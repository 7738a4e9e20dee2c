"""The tokens desk: what a reset token or link is bound to, and whether it still works."""

from __future__ import annotations

from credmail.service.links import TokenStatus, check_token
from credmail.service.ports import Clock, UnitOfWorkFactory


class TokenDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def check(self, token_or_link: str) -> TokenStatus:
        with self.uow(read_only=True) as uow:
            return check_token(uow, token_or_link, self.clock())
