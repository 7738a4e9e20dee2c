"""SQLAlchemy 2 table models; Alembic migrations in migrations/ mirror them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class PersonRow(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    class_name: Mapped[str | None] = mapped_column(String(50))
    language: Mapped[str | None] = mapped_column(String(8))
    sex: Mapped[str | None] = mapped_column(String(1))  # "F" / "M" from the register
    new_student: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    emails: Mapped[list[EmailRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", order_by="EmailRow.position"
    )


class EmailRow(Base):
    __tablename__ = "person_emails"
    __table_args__ = (UniqueConstraint("person_id", "address_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    person: Mapped[PersonRow] = relationship(back_populates="emails")


class RememberedAddressRow(Base):
    """An address the secretariat added to a person on approving a request from it: on
    file like the register's (`person_emails`), but kept apart so a re-import keeps it."""

    __tablename__ = "remembered_addresses"
    __table_args__ = (UniqueConstraint("person_id", "address_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_id: Mapped[int | None] = mapped_column(Integer)


class GuardianshipRow(Base):
    __tablename__ = "guardianships"

    guardian_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    student_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    folder: Mapped[str] = mapped_column(String(500), primary_key=True)
    validity: Mapped[int] = mapped_column(Integer)
    last_uid: Mapped[int] = mapped_column(Integer)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LedgerRow(Base):
    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("folder", "validity", "source_key"),
        Index("ix_ledger_handled_at", "handled_at", "outcome"),  # the statistics
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder: Mapped[str] = mapped_column(String(500))
    validity: Mapped[int] = mapped_column(Integer)
    source_key: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_folder: Mapped[str | None] = mapped_column(String(500))
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class ReviewRow(Base):
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    sent_summary: Mapped[str | None] = mapped_column(Text)
    deferred_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # out of the queue


class NearMissRow(Base):
    """A mail that looks like a credential request without the exact subject: flagged in
    the mailbox (keyword) and listed in the console until treated or dismissed."""

    __tablename__ = "near_misses"
    __table_args__ = (
        UniqueConstraint("folder", "validity", "source_key", name="uq_near_misses_source"),
        Index("ix_near_misses_sender_key", "sender_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id", ondelete="SET NULL"))
    folder: Mapped[str] = mapped_column(String(500))
    validity: Mapped[int] = mapped_column(Integer)
    source_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_key: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(8))
    guided: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20), index=True)
    keyword_wanted: Mapped[bool] = mapped_column(Boolean)
    keyword_set: Mapped[bool] = mapped_column(Boolean)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_key", "recipient_key", "created_at"),
        Index("ix_outbox_account", "username", "purpose", "created_at"),
        Index("ix_outbox_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id", ondelete="SET NULL"))
    review_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_items.id", ondelete="SET NULL")
    )
    template: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str | None] = mapped_column(String(320))
    recipient_key: Mapped[str | None] = mapped_column(String(320))
    username: Mapped[str | None] = mapped_column(String(100))
    purpose: Mapped[str | None] = mapped_column(String(50))
    envelope_from: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    token_selector: Mapped[str | None] = mapped_column(String(32))


class DeliveryStateRow(Base):
    """A single row: delivery paused on a configuration error, and the last delivery error."""

    __tablename__ = "delivery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TokenRow(Base):
    __tablename__ = "link_tokens"
    __table_args__ = (Index("ix_link_tokens_subject", "username", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    selector: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(320))
    address_key: Mapped[str | None] = mapped_column(String(320), index=True)
    state_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    origin: Mapped[str | None] = mapped_column(String(20))  # request | approval | campaign


class BreakerRow(Base):
    """The global circuit breaker (a single row): tripped until an operator resets it."""

    __tablename__ = "circuit_breaker"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tripped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(200))


class AttemptRow(Base):
    """How many times processing of a message started; survives crashes, bounds retries."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("folder", "validity", "source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder: Mapped[str] = mapped_column(String(500))
    validity: Mapped[int] = mapped_column(Integer)
    source_key: Mapped[str] = mapped_column(String(300))
    count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OAuthIdentityRow(Base):
    """The OAuth2 identity: its refresh token (encrypted) and the last sign-in outcome."""

    __tablename__ = "oauth_identities"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    cause: Mapped[str | None] = mapped_column(String(300))
    fix: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxPauseRow(Base):
    """The whole outbox waits until `paused_until` after a provider's quota reply."""

    __tablename__ = "outbox_pause"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(200))


class StaffRow(Base):
    """A member of the secretariat who signs in to the web console."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    # "sealed:" + Fernet token (console.totp_key_file); base32 in clear from older versions
    totp_secret: Mapped[str | None] = mapped_column(String(300))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code works once
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the hash may be of the password without surrounding spaces (set before 0009)
    password_trimmed: Mapped[bool] = mapped_column(Boolean, default=False)


class StaffSessionRow(Base):
    """A signed-in console session: only the SHA-256 of its cookie value is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_name: Mapped[str] = mapped_column(String(100), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SignInFailureRow(Base):
    """Failed sign-ins per account ("account:NAME") and per client address ("address:IP")."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """The append-only activity log: who did what, when, on which item."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action", "action"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(50))
    item: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class RegisterTaskRow(Base):
    """A verified task "da eseguire nel registro" (the worklist link backend)."""

    __tablename__ = "register_tasks"
    __table_args__ = (Index("ix_register_tasks_status", "status", "confirmed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    selector: Mapped[str] = mapped_column(String(32), unique=True)
    username: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(20))
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(320))
    address_key: Mapped[str | None] = mapped_column(String(320), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class LinkAuditRow(Base):
    """What happened to a link on the reset page: spent, backend called, refused."""

    __tablename__ = "link_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    selector: Mapped[str] = mapped_column(String(32), index=True)
    username: Mapped[str | None] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(20))
    backend: Mapped[str] = mapped_column(String(20))
    result: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500))
    client: Mapped[str | None] = mapped_column(String(64))


class WebLimitRow(Base):
    """How often one client hit one of the reset page's limits in one window: the count
    every `credmail web` process shares (rows older than the previous window are purged)."""

    __tablename__ = "web_limits"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)  # "post", "invalid"
    client: Mapped[str] = mapped_column(String(64), primary_key=True)  # its limit key
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    hits: Mapped[int] = mapped_column(Integer)


class CampaignRow(Base):
    """A mailing to the guardians of new students (the September campaign)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # running, paused, cancelled, done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignRecipientRow(Base):
    """One (guardian address, student) pair of a campaign: sent at most once (the key)."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "address_key", "student"),
        Index("ix_campaign_recipients_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    address: Mapped[str | None] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320))
    student: Mapped[str] = mapped_column(String(100))
    guardians: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20))  # planned, queued, bounced, cancelled
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationRow(Base):
    """One mail slot for the school's own people: the digest of one day and time, or one
    alert; the unique key makes each slot queue its mail exactly once (service/notify)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("kind", "slot", name="uq_notifications_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "digest", "alert"
    slot: Mapped[str] = mapped_column(String(100))  # "2026-12-08 07:45", "breaker#3"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mails: Mapped[int] = mapped_column(Integer, default=0)  # 0: nothing waited


class AlertStateRow(Base):
    """What the sysadmin was last told about one state needing a person, and when."""

    __tablename__ = "alert_states"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    announced: Mapped[bool] = mapped_column(Boolean, default=False)  # the last mail: begun
    # when the last mail saying it began went (the repeat window counts from there)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mails: Mapped[int] = mapped_column(Integer, default=0)
