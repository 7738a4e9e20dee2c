"""The SQLAlchemy unit of work: one session, one transaction, repositories on top."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from credmail.adapters.db import writes
from credmail.adapters.db.engine import CRASH_SAFE, READ_ONLY
from credmail.adapters.db.nudge import NoNudge, NudgeSender
from credmail.adapters.db.repositories import (
    SqlAttempts,
    SqlAudit,
    SqlBreaker,
    SqlCampaigns,
    SqlCheckpoints,
    SqlDirectory,
    SqlLedger,
    SqlLinkAudit,
    SqlNearMisses,
    SqlNotices,
    SqlOutbox,
    SqlRemembered,
    SqlReview,
    SqlStaff,
    SqlTasks,
    SqlTokens,
)
from credmail.service.ports import (
    AttemptRepo,
    AuditRepo,
    BreakerRepo,
    CampaignRepo,
    CheckpointRepo,
    DirectoryRepo,
    LedgerRepo,
    LinkAuditRepo,
    NearMissRepo,
    NoticeRepo,
    OutboxRepo,
    RememberedRepo,
    ReviewRepo,
    StaffRepo,
    TaskRepo,
    TokenRepo,
)


class SqlUnitOfWork:
    """Rolls back unless `commit()` was called; closes the session on exit."""

    session: Session
    directory: DirectoryRepo
    ledger: LedgerRepo
    checkpoints: CheckpointRepo
    outbox: OutboxRepo
    review: ReviewRepo
    tokens: TokenRepo
    breaker: BreakerRepo
    attempts: AttemptRepo
    staff: StaffRepo
    audit: AuditRepo
    tasks: TaskRepo
    link_audit: LinkAuditRepo
    campaigns: CampaignRepo
    notices: NoticeRepo
    remembered: RememberedRepo
    near_misses: NearMissRepo

    def __init__(
        self,
        factory: sessionmaker[Session],
        read_only: bool = False,
        review_raw_cap: int | None = None,
        crash_safe_only: bool = False,
        nudge: NudgeSender | None = None,
    ) -> None:
        self._factory = factory
        self._nudge = nudge or NoNudge()
        self._nudge_wanted = False
        self._read_only = read_only
        self._crash_safe_only = crash_safe_only
        self._review_raw_cap = review_raw_cap

    def __enter__(self) -> Self:
        self.session = self._factory()
        if self._read_only:
            self.session.connection(execution_options={READ_ONLY: True})
        elif self._crash_safe_only:
            self.session.connection(execution_options={CRASH_SAFE: True})
        self.directory = SqlDirectory(self.session)
        self.ledger = self._ledger = SqlLedger(self.session)
        self.checkpoints = SqlCheckpoints(self.session)
        self.outbox = self._outbox = SqlOutbox(self.session)
        self.review = SqlReview(self.session, self._review_raw_cap)
        self.tokens = self._tokens = SqlTokens(self.session)
        self.breaker = SqlBreaker(self.session)
        self.attempts = SqlAttempts(self.session)
        self.staff = SqlStaff(self.session)
        self.audit = SqlAudit(self.session)
        self.tasks = SqlTasks(self.session)
        self.link_audit = SqlLinkAudit(self.session)
        self.campaigns = SqlCampaigns(self.session)
        self.notices = SqlNotices(self.session)
        self.remembered = SqlRemembered(self.session)
        self.near_misses = SqlNearMisses(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        wanted, self._nudge_wanted = self._nudge_wanted, False
        if wanted:
            self._nudge.in_transaction(self.session)  # PostgreSQL: NOTIFY, sent on commit
        self.session.commit()  # queued inserts run first (see `writes`)
        if wanted:
            self._nudge.after_commit()  # SQLite: the datagram, once the mail is there

    def nudge(self) -> None:
        self._nudge_wanted = True

    def flush(self) -> None:
        self.session.flush()
        writes.flush(self.session.connection())

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside rolls back only what it did (and what
        the ledger, the outbox and the tokens remembered, which may be what was rolled back)."""
        try:
            with self.session.begin_nested():
                yield
                self.flush()  # a queued insert that fails is this savepoint's failure
        except BaseException:
            self._ledger.forget()
            self._outbox.forget()
            self._tokens.forget()
            raise


class SqlUnitOfWorkFactory:
    """Builds units of work on one engine; the engine connects lazily."""

    def __init__(
        self,
        engine: Engine,
        review_raw_cap: int | None = None,
        nudge: NudgeSender | None = None,
    ) -> None:
        """`nudge`: how a unit of work that called `nudge()` wakes the daemon."""
        self.engine = engine
        self.nudge = nudge
        writes.install(engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.review_raw_cap = review_raw_cap

    def __call__(self, read_only: bool = False, crash_safe_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self._sessions, read_only, self.review_raw_cap, crash_safe_only, self.nudge
        )
