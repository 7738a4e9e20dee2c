"""The port for what spending a reset link does: a register task, an LDAP password, a webhook.

The reset page (web) confirms that the person controls the address on file, then hands
a `SpendRequest` to the configured backend. A backend is synchronous (the web app runs it
in a worker thread) and never raises for an expected failure: it answers `SpendOutcome`.
The token is marked spent only when the outcome is `done`; `retry_later` keeps the link
usable ("riprova più tardi"); `rejected` (a password the policy refuses) shows `problems`
on the page and keeps the link usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class BackendKind(StrEnum):
    WORKLIST = "worklist"  # a verified task for the secretariat, "da eseguire nel registro"
    LDAP = "ldap"  # the school's own directory: the family sets the password on the page
    WEBHOOK = "webhook"  # a signed POST to the school's system


class SpendResult(StrEnum):
    DONE = "done"
    RETRY_LATER = "retry_later"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SpendRequest:
    request_id: str  # the token's selector: stable, the idempotency key
    username: str
    purpose: str
    role: str
    first_name: str
    last_name: str
    address: str | None  # the address on file the link was sent to
    requested_at: datetime  # when the link was issued
    confirmed_at: datetime  # when the family pressed the button
    new_password: str | None = field(default=None, repr=False)  # only when needs_password


@dataclass(frozen=True)
class SpendOutcome:
    result: SpendResult
    problems: tuple[str, ...] = ()  # Italian, shown to the family (password policy)
    detail: str | None = None  # for the audit table and logs: never a password or token

    @property
    def done(self) -> bool:
        return self.result is SpendResult.DONE


class LinkBackend(Protocol):
    kind: BackendKind
    needs_password: bool  # the page asks for a new password twice

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        """Italian reasons the policy refuses this password (empty: acceptable)."""
        ...

    def spend(self, request: SpendRequest) -> SpendOutcome: ...


class WorklistBackend:
    """For registers without an API (ClasseViva): spending the link records a verified task
    for the secretariat. The reset desk writes the task in the same transaction as the
    spend (`in_transaction`), so `spend` itself has nothing left to do."""

    kind = BackendKind.WORKLIST
    needs_password = False
    in_transaction = True

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        return []

    def spend(self, request: SpendRequest) -> SpendOutcome:
        return SpendOutcome(SpendResult.DONE)
