"""The reset page's desk: what a link is for (without spending it), and spending it.

Looking never writes. Spending is atomic: with the worklist backend the conditional
spend and the register task commit in one transaction, so two concurrent POSTs cannot
both spend; with an external backend (LDAP, webhook) the link is first claimed (a
conditional update), the backend runs outside any transaction, and the link is marked
spent only when the backend answers DONE; RETRY_LATER and REJECTED release it.
Every spend and backend call is written to the link audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from credmail.core.campaign import PURPOSE_FIRST_ACCESS
from credmail.core.recipients import PURPOSE_STUDENT
from credmail.core.values import Person
from credmail.service.link_backends import (
    BackendKind,
    LinkBackend,
    SpendOutcome,
    SpendRequest,
    SpendResult,
)
from credmail.service.links import check_token, split_token
from credmail.service.outbox.queue import languages_at
from credmail.service.password_policy import BOTH_FIELDS, Problem
from credmail.service.ports import (
    ORIGIN_REQUEST,
    Clock,
    LinkEvent,
    RegisterTask,
    TokenRecord,
    TokenState,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.register_import import is_register_reference

STUDENT_PURPOSES = (PURPOSE_STUDENT, PURPOSE_FIRST_ACCESS)
# The selector column's width: anything longer cannot name a link and is not audited.
MAX_SELECTOR = 32


class SpendStatus(StrEnum):
    DONE = "done"
    INVALID = "invalid"  # the link cannot be used (see `state`)
    RETRY_LATER = "retry_later"  # the backend failed or another spend is in progress
    REJECTED = "rejected"  # the password policy refused the new password


@dataclass(frozen=True)
class ResetView:
    """What the confirmation page shows. `state` is VALID or why the link cannot be used.

    `username` is the account's login name (the password form's hidden field); `code` is
    the same when it is a code the register knows, None when credmail made it up (the
    export had no login codes): a family is never shown a made-up key as a login code.
    `name` is the account holder's (for a student's link, the student's: never the reader's).
    """

    state: TokenState
    backend: BackendKind
    needs_password: bool
    username: str | None = None
    name: str | None = None
    purpose: str | None = None
    expires_at: datetime | None = None
    languages: tuple[str, ...] = ()  # the recipient's, as for the mail
    origin: str = ORIGIN_REQUEST  # why the link was sent (request, approval, campaign)
    sex: str | None = None  # the account holder's, when the register gave it

    @property
    def valid(self) -> bool:
        return self.state is TokenState.VALID

    @property
    def code(self) -> str | None:
        if self.username is None or is_register_reference(self.username):
            return None
        return self.username

    @property
    def for_student(self) -> bool:
        """A student's link, read by a guardian (a request or the September mailing)."""
        return self.purpose in STUDENT_PURPOSES


@dataclass(frozen=True)
class SpendView:
    status: SpendStatus
    view: ResetView
    problems: tuple[str, ...] = ()
    task_id: int | None = None


class ResetDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        backend: LinkBackend,
        claim_seconds: int = 120,
    ) -> None:
        self.uow, self.clock, self.backend = uow, clock, backend
        self.claim = timedelta(seconds=claim_seconds)

    @property
    def needs_password(self) -> bool:
        return self.backend.needs_password

    def look(self, token: str) -> ResetView:
        """The link's state and who it is for; never spends, never writes."""
        with self.uow(read_only=True) as uow:
            view, _, _ = self._view(uow, token, self.clock())
            return view

    def spend(
        self, token: str, new_password: str | None = None, client: str | None = None
    ) -> SpendView:
        if getattr(self.backend, "in_transaction", False):
            return self._spend_in_transaction(token, client)
        return self._spend_external(token, new_password, client)

    # -- internals

    def _view(
        self, uow: UnitOfWork, token: str, now: datetime
    ) -> tuple[ResetView, TokenRecord | None, Person | None]:
        status = check_token(uow, token, now)
        kind, needs = self.backend.kind, self.backend.needs_password
        if not status.found:
            return ResetView(TokenState.UNKNOWN, kind, needs), None, None
        state = TokenState(status.state)
        record = uow.tokens.find(split_token(token)[0])
        person = uow.directory.get(status.username) if status.username else None
        if state is TokenState.VALID and (record is None or person is None):
            state = TokenState.STALE
        if state is not TokenState.VALID:
            return _invalid_view(state, kind, needs, record), record, person
        view = ResetView(
            state,
            kind,
            needs,
            username=status.username,
            name=person.full_name if person else None,
            purpose=status.purpose,
            expires_at=status.expires_at,
            languages=_languages(uow, record, person),
            origin=record.origin if record else ORIGIN_REQUEST,
            sex=person.sex if person else None,
        )
        return view, record, person

    def _request(
        self,
        selector: str,
        record: TokenRecord,
        person: Person,
        now: datetime,
        new_password: str | None,
    ) -> SpendRequest:
        return SpendRequest(
            request_id=selector,
            username=record.username,
            purpose=record.purpose,
            role=person.role.value,
            first_name=person.first_name,
            last_name=person.last_name,
            address=record.address,
            requested_at=record.created_at,
            confirmed_at=now,
            new_password=new_password,
        )

    def _audit(
        self,
        uow: UnitOfWork,
        now: datetime,
        selector: str,
        username: str | None,
        event: str,
        result: str,
        detail: str | None = None,
        client: str | None = None,
    ) -> None:
        if not selector or len(selector) > MAX_SELECTOR:
            return
        kind = self.backend.kind.value
        uow.link_audit.add(LinkEvent(now, selector, username, event, kind, result, detail, client))

    def _spend_in_transaction(self, token: str, client: str | None) -> SpendView:
        now = self.clock()
        selector = split_token(token)[0]
        with self.uow() as uow:
            view, record, person = self._view(uow, token, now)
            if not view.valid or record is None or person is None:
                return SpendView(SpendStatus.INVALID, view)
            if not uow.tokens.consume(selector, now):  # a concurrent POST got there first
                return SpendView(SpendStatus.INVALID, _invalid(view, TokenState.USED))
            request = self._request(selector, record, person, now, None)
            task_id = uow.tasks.add(_task(request), selector)
            detail = f"task {task_id}"
            self._audit(uow, now, selector, record.username, "spent", "done", detail, client)
            uow.commit()
        return SpendView(SpendStatus.DONE, view, task_id=task_id)

    def _spend_external(
        self, token: str, new_password: str | None, client: str | None
    ) -> SpendView:
        now = self.clock()
        selector = split_token(token)[0]
        with self.uow() as uow:
            view, record, person = self._view(uow, token, now)
            if not view.valid or record is None or person is None:
                return SpendView(SpendStatus.INVALID, view)
            request = self._request(selector, record, person, now, new_password)
            if self.backend.needs_password:
                problems = self._password_problems(new_password, request)
                if problems:
                    return SpendView(SpendStatus.REJECTED, view, tuple(problems))
            if not uow.tokens.claim(selector, now, now + self.claim):
                return SpendView(SpendStatus.RETRY_LATER, view)
            uow.commit()
        outcome = self._call(request)
        with self.uow() as uow:
            result, detail = outcome.result.value, outcome.detail
            self._audit(uow, now, selector, record.username, "backend_call", result, detail, client)
            spent = outcome.done and uow.tokens.consume(selector, now)
            if spent:
                self._audit(uow, now, selector, record.username, "spent", "done", None, client)
            else:
                uow.tokens.release(selector)
            uow.commit()
        if outcome.done:
            return SpendView(SpendStatus.DONE, view)
        if outcome.result is SpendResult.REJECTED:
            return SpendView(SpendStatus.REJECTED, view, outcome.problems)
        return SpendView(SpendStatus.RETRY_LATER, view)

    def _password_problems(self, password: str | None, request: SpendRequest) -> list[str]:
        if not password:
            return [Problem(BOTH_FIELDS, "both_fields")]
        return self.backend.password_problems(password, request)

    def _call(self, request: SpendRequest) -> SpendOutcome:
        """A backend never raises for an expected failure; anything else keeps the link."""
        try:
            return self.backend.spend(request)
        except Exception as exc:  # the family sees "riprova più tardi", the audit the type
            return SpendOutcome(SpendResult.RETRY_LATER, detail=f"error: {type(exc).__name__}")


def _languages(
    uow: UnitOfWork, record: TokenRecord | None, person: Person | None
) -> tuple[str, ...]:
    """The languages of the people at the address the link was sent to (issue 19)."""
    if record is None or not record.address:
        return ()
    return languages_at(uow, record.address, person)


def _invalid(view: ResetView, state: TokenState) -> ResetView:
    return ResetView(
        state, view.backend, view.needs_password, purpose=view.purpose, origin=view.origin
    )


def _invalid_view(
    state: TokenState, kind: BackendKind, needs: bool, record: TokenRecord | None
) -> ResetView:
    """A link that cannot be used: what it was for (so the page names the right subject
    to write with), never whom it was for."""
    if record is None:
        return ResetView(state, kind, needs)
    return ResetView(state, kind, needs, purpose=record.purpose, origin=record.origin)


def _task(request: SpendRequest) -> RegisterTask:
    return RegisterTask(
        id=0,
        username=request.username,
        purpose=request.purpose,
        role=request.role,
        first_name=request.first_name,
        last_name=request.last_name,
        address=request.address,
        requested_at=request.requested_at,
        confirmed_at=request.confirmed_at,
    )
