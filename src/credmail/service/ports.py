"""Small ports the use cases talk to; adapters implement them, tests may fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from credmail.core.values import MailRef, Person, Role

if TYPE_CHECKING:
    import authres

    from credmail.service.directory_csv import DirectoryRecord

Clock = Callable[[], datetime]
"""Now, timezone-aware; injected so that tests control time."""


@dataclass(frozen=True)
class FolderState:
    """What selecting the watched folder tells: UIDVALIDITY and the next UID.

    `ordered` is False for sources without UIDs (Maildir): every scan lists all mail.
    """

    folder: str
    validity: int
    uidnext: int
    ordered: bool = True


class MailSource(Protocol):
    """Where requests arrive. Hands over bytes and identities; never parses."""

    def select(self) -> FolderState: ...
    def scan(self, after_uid: int, limit: int) -> list[MailRef]: ...
    def fetch_many(self, refs: Sequence[MailRef]) -> dict[str, bytes]:
        """Full bodies by key; a message that is gone is simply missing."""

    def move_many(self, refs: Sequence[MailRef], folder: str) -> None:
        """Move to `folder` (created beforehand); messages already gone are ignored."""

    def set_keyword(self, refs: Sequence[MailRef], keyword: str, on: bool) -> None:
        """Set (or take off) an IMAP keyword; nothing else about the message changes."""

    def wait_for_mail(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class DkimVerifier(Protocol):
    """Local DKIM verification (it looks the signers' keys up in DNS)."""

    def verify(self, raw: bytes, sender: str) -> bool:
        """A valid signature, aligned with `sender`'s domain, covering exactly that From."""


class ArcResults(Protocol):
    """ARC verification (DNS): the results a trusted sealer vouches for."""

    def trusted_results(self, raw: bytes) -> authres.AuthenticationResultsHeader | None:
        """The highest ARC-Authentication-Results of a passing chain sealed by a trusted
        domain, or None."""


@dataclass(frozen=True)
class OutgoingMail:
    """One rendered message ready for SMTP."""

    message_id: str
    envelope_from: str
    recipient: str
    raw: bytes


class SendError(Exception):
    """A delivery failure; `permanent` tells whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool, config: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.config = config  # the server refuses our settings (AUTH, STARTTLS): stop sending


class MailConnection(Protocol):
    """One delivery in two steps, so the caller can record success right after DATA."""

    async def start(self, mail: OutgoingMail) -> None:
        """Send the envelope (MAIL FROM, RCPT TO), or raise SendError."""

    async def finish(self, mail: OutgoingMail) -> None:
        """Send the content; returns once the server has accepted it, or raises SendError."""

    async def reset(self) -> None:
        """Abandon a started delivery (best effort)."""


class MailSender(Protocol):
    """Delivers rendered mail (SMTP in production, .eml files in the demo)."""

    def connect(self, keep_open: bool = False) -> AbstractAsyncContextManager[MailConnection]:
        """A connection for one drain (one kept open by the last drain, if any);
        `keep_open`: leave it open afterwards for the next drain on this event loop."""

    async def close(self) -> None:
        """Close a connection kept open between drains (none: nothing to do)."""


class ReviewStatus(StrEnum):
    """A review item: waiting for a person, or what they decided (stored as is)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISCARDED = "discarded"


class OutboxStatus(StrEnum):
    """A queued mail: still to send (or retry), sent, given up, or bounced after sending."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"


UNSENT = "unsent"
"""`OutboxAdmin.listing(UNSENT)`: every mail but the sent ones (the console's default
view), chosen in the database: the sent history only grows."""


class TokenState(StrEnum):
    """What checking a link token finds (the `state` of `credmail tokens check`)."""

    UNKNOWN = "unknown"
    VALID = "valid"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"
    STALE = "stale"
    REDEEMED = "redeemed"


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    outcome: str
    target_folder: str | None
    moved: bool
    source_key: str


@dataclass(frozen=True)
class ReviewItem:
    id: int
    created_at: datetime
    status: str
    kind: str
    sender: str | None
    message_id: str | None
    subject: str
    reasons: tuple[str, ...]
    raw: bytes | None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    note: str | None = None
    sent_summary: str | None = None
    deferred_until: datetime | None = None  # out of the queue until then (review defer)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    ledger_id: int | None
    message_id: str
    template: str
    recipient: str | None
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    envelope_from: str = ""
    raw: bytes | None = field(default=None, repr=False)
    token_selector: str | None = None
    purpose: str | None = None  # of the link it carries (None: no link, or several)


@dataclass(frozen=True)
class DeliveryState:
    """Delivery paused on a configuration error (until a start or `outbox retry`)."""

    paused_at: datetime | None = None
    pause_reason: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True)
class TokenRecord:
    username: str
    purpose: str
    address: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    state_hash: str
    token_hash: str = field(repr=False)
    origin: str = "request"  # why the link was sent: ORIGINS


# Why a link was sent: the family asked (the pipeline), the secretariat approved a held
# request, or the school wrote first (the September mailing). The reset page says which.
ORIGIN_REQUEST, ORIGIN_APPROVAL, ORIGIN_CAMPAIGN = "request", "approval", "campaign"
ORIGINS = (ORIGIN_REQUEST, ORIGIN_APPROVAL, ORIGIN_CAMPAIGN)


class DirectoryRepo(Protocol):
    def prefetch(self, address_keys: Sequence[str]) -> list[Person]:
        """A batch's senders read at once (returned: the people at any of them, each once);
        later reads in this unit of work may reuse them."""

    def people_with_address(self, address_key: str) -> list[Person]: ...
    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]: ...
    def get(self, username: str) -> Person | None: ...
    def guardians_of(self, student_username: str) -> list[Person]: ...


class LedgerRepo(Protocol):
    def find_many(self, refs: Sequence[MailRef]) -> dict[str, LedgerEntry]: ...
    def prefetch_message_ids(self, message_ids: Sequence[str]) -> None:
        """A batch's duplicate checks in one read; later finds in this unit of work reuse it."""

    def find_by_message_id(self, message_id: str) -> LedgerEntry | None: ...
    def expect(self, count: int) -> None:
        """About `count` entries are coming in this transaction: where ids are drawn ahead
        (PostgreSQL's sequence), draw them in one round trip."""

    def add(
        self,
        ref: MailRef,
        message_id: str | None,
        outcome: str,
        reasons: Sequence[str],
        target_folder: str | None,
        now: datetime,
        error: str | None = None,
    ) -> int: ...
    def mark_moved(self, entry_ids: Sequence[int], now: datetime) -> None: ...
    def retarget(
        self, entry_id: int, outcome: str, reasons: Sequence[str], target_folder: str | None
    ) -> None:
        """A near miss treated later: its new outcome, and the folder to move it to."""

    def unmoved(self, folder: str, validity: int) -> list[LedgerEntry]: ...
    def scrub_before(self, before: datetime) -> int: ...
    def forget_message_ids(self, ledger_ids: Sequence[int]) -> int: ...
    def tally(self) -> dict[tuple[str, str], int]:
        """(outcome, reason) -> handled messages; reason "" for those without one."""


class CheckpointRepo(Protocol):
    def get(self, folder: str) -> tuple[int, int] | None: ...
    def set(self, folder: str, validity: int, last_uid: int, now: datetime) -> None: ...
    def last_sync(self) -> datetime | None: ...


class OutboxQueue(Protocol):
    """What handling a request and approving a review need: queue a reply, spot our own mail."""

    def add(
        self,
        mail: OutgoingMail,
        template: str,
        now: datetime,
        *,
        account: tuple[str, str] | None = None,
        ledger_id: int | None = None,
        review_id: int | None = None,
        token_selector: str | None = None,
    ) -> None: ...
    def knows_message_id(self, message_ids: Sequence[str]) -> bool: ...


class OutboxCounts(Protocol):
    """What the limits and the status report count."""

    def account_links(
        self, username: str, purpose: str, since: datetime
    ) -> tuple[int, datetime | None]:
        """(links, time of the newest) issued for the account since `since`."""

    def templates_since(self, since: datetime) -> dict[str, int]:
        """Mail queued since `since`, counted by template."""

    def mail_to(
        self, address_key: str, since: datetime, notice_template: str
    ) -> tuple[int, int, int]:
        """(all mail, links, notices) sent to the address since `since`."""

    def prefetch_recent(
        self, address_keys: Sequence[str], usernames: Sequence[str], since: datetime
    ) -> None:
        """A batch's recent mail in one read; later counts in this unit of work reuse it."""

    def counts(self) -> dict[str, int]: ...
    def oldest_unsent(self) -> datetime | None: ...
    def last_sent(self) -> datetime | None: ...


class OutboxDispatch(Protocol):
    """What the delivery loop needs: due mail, its outcome, the pause on a config error."""

    def due(self, now: datetime, limit: int) -> list[OutboxEntry]: ...
    def due_marker(self, now: datetime) -> tuple[int, int]:
        """(how many, the newest id) of the mail due now, from the due index alone: it
        changes when new mail is queued or a retry comes due (the poll nudge's check)."""

    def claim(self, entry_id: int) -> bool:
        """True if the row is still pending; it is locked until the end of the transaction."""

    def mark_sent(self, entry_id: int, now: datetime) -> None: ...
    def mark_retry(self, entry_id: int, error: str, next_at: datetime) -> None: ...
    def mark_failed(self, entry_id: int, error: str) -> None: ...
    def mark_bounced(self, message_ids: Sequence[str]) -> list[OutboxEntry]: ...
    def delivery_state(self) -> DeliveryState: ...
    def pause(self, now: datetime, reason: str) -> None: ...
    def resume(self) -> bool: ...
    def record_error(self, error: str, now: datetime) -> None: ...


class OutboxAdmin(Protocol):
    """What an operator does: list, look at and retry mail, lift the pause."""

    def listing(self, status: str | None) -> list[OutboxEntry]: ...
    def get(self, entry_id: int) -> OutboxEntry | None: ...
    def requeue(self, entry_id: int, now: datetime) -> None: ...
    def delivery_state(self) -> DeliveryState: ...
    def resume(self) -> bool: ...


class OutboxPrivacy(Protocol):
    """What the privacy requests and the retention purge need."""

    def for_recipient(self, address_key: str) -> list[OutboxEntry]: ...
    def forget_recipient(self, address_key: str) -> list[int]: ...
    def scrub_before(self, before: datetime) -> int: ...


class OutboxRepo(OutboxQueue, OutboxCounts, OutboxDispatch, OutboxAdmin, OutboxPrivacy, Protocol):
    """The whole outbox, as one SQL class implements it; callers use the roles above."""


class ReviewRepo(Protocol):
    def add(self, item: ReviewItem, ledger_id: int | None) -> None: ...
    def pending(self, now: datetime | None = None) -> list[ReviewItem]:
        """Pending items in the queue at `now` (deferred ones only once due), oldest
        first; `now` None: every pending item, deferred or not."""

    def count_pending(self, now: datetime | None = None) -> int: ...
    def count_deferred(self, now: datetime) -> int:
        """Pending items still deferred at `now`."""

    def deferred(self, now: datetime) -> list[ReviewItem]:
        """Pending items still out of the queue at `now`, the soonest back first."""

    def due(self, now: datetime) -> list[ReviewItem]:
        """Deferred items whose date came (back in the queue at `now`), in date order."""

    def defer(self, item_id: int, until: datetime) -> bool:
        """Out of the queue until `until`; False when the item is not pending."""

    def get(self, item_id: int) -> ReviewItem | None: ...
    def record_decision(
        self, item_id: int, decision: str, by: str, now: datetime, note: str | None, sent: str
    ) -> bool:
        """Only a pending item is decided; False when another decision came first."""

    def queue(
        self, where: ReviewFilter, limit: int, offset: int = 0
    ) -> tuple[list[ReviewItem], int]:
        """Pending items matching `where`, oldest first, without their raw message; and
        how many match in all."""

    def for_sender(self, address_key: str) -> list[ReviewItem]: ...
    def forget_sender(self, address_key: str) -> list[int]: ...
    def purge_decided(self, before: datetime) -> int: ...


@dataclass(frozen=True)
class RememberedAddress:
    """An address the secretariat added to a person on approving a request from it: on
    file like the register's, kept apart so a re-import keeps it."""

    id: int
    username: str
    address: str
    added_by: str
    added_at: datetime
    review_id: int | None = None


class RememberedRepo(Protocol):
    def add(
        self, username: str, address: str, by: str, now: datetime, review_id: int | None
    ) -> bool:
        """False when the person is not on file, the address has no key, or it is there."""

    def for_person(self, username: str) -> list[RememberedAddress]: ...
    def remove(self, entry_id: int, username: str) -> RememberedAddress | None:
        """Delete one of the person's remembered addresses; None if not theirs."""

    def for_address(self, address_key: str) -> list[RememberedAddress]: ...
    def forget_address(self, address_key: str) -> int: ...


class TokenRepo(Protocol):
    def prefetch_live(self, usernames: Sequence[str]) -> None:
        """Which of a batch's accounts hold live tokens, in one read, for revoke_active."""

    def add(self, selector: str, record: TokenRecord) -> None: ...
    def revoke_active(
        self, username: str, purpose: str, now: datetime, address_key: str | None = None
    ) -> int: ...
    def active(self, username: str, purpose: str, now: datetime) -> list[TokenRecord]: ...
    def find(self, selector: str) -> TokenRecord | None: ...
    def consume(self, selector: str, now: datetime) -> bool: ...
    def claim(self, selector: str, now: datetime, until: datetime) -> bool:
        """Hold a valid, unspent token while an external backend runs (conditional: a
        second claim before `until` fails)."""

    def release(self, selector: str) -> None: ...
    def mint(self, selector: str, token_hash: str, expires_at: datetime) -> bool:
        """Give an unspent, unrevoked token its verifier hash and its expiry (at send)."""

    def purge_expired(self, before: datetime) -> int: ...
    def for_address(self, address_key: str) -> list[TokenRecord]: ...
    def forget_address(self, address_key: str) -> int: ...


@dataclass(frozen=True)
class RegisterTask:
    """A verified request "da eseguire nel registro": the family confirmed by the link
    that it controls the address on file; the secretariat resends the credentials from the
    register's back office, then marks it done."""

    id: int
    username: str
    purpose: str
    role: str
    first_name: str
    last_name: str
    address: str | None
    requested_at: datetime  # when the link was issued
    confirmed_at: datetime  # when the family pressed the button
    status: str = "open"  # open | done
    done_at: datetime | None = None
    done_by: str | None = None
    note: str | None = None
    class_name: str | None = None  # the person's class on file (the worklist's pages)


@dataclass(frozen=True)
class TaskFilter:
    """Which register tasks a worklist page or export shows."""

    status: str | None = "open"  # None: every task
    class_name: str | None = None
    since: datetime | None = None  # confirmed at or after
    until: datetime | None = None  # confirmed before


class WorklistQueries(Protocol):
    """The register tasks as the secretariat works them in bulk (read-only)."""

    def families(
        self, where: TaskFilter, limit: int, offset: int
    ) -> tuple[list[RegisterTask], int, int]:
        """The tasks of a page of families (the tasks at one address; a task with no
        address is a family of its own), the family waiting longest first, each family's
        tasks together; and how many families and tasks match in all."""

    def classes(self, status: str | None = "open") -> list[str]:
        """The classes of the people with tasks (the page's filter)."""

    def open_among(self, task_ids: Sequence[int]) -> list[RegisterTask]:
        """The open tasks among `task_ids`, with their address (marking done in bulk)."""

    def rows(self, where: TaskFilter) -> Iterator[RegisterTask]:
        """Every matching task, by class, surname and name (the CSV export)."""


@dataclass(frozen=True)
class LinkEvent:
    """One row of the link audit: a spend, a backend call and its result (never a token
    or password; the selector names the link without opening it)."""

    at: datetime
    selector: str
    username: str | None
    event: str  # spent | backend_call | refused
    backend: str
    result: str
    detail: str | None = None
    client: str | None = None


class TaskRepo(Protocol):
    def add(self, task: RegisterTask, selector: str) -> int: ...
    def listing(self, status: str | None = None) -> list[RegisterTask]: ...
    def get(self, task_id: int) -> RegisterTask | None: ...
    def mark_done(self, task_id: int, now: datetime, by: str, note: str | None) -> bool:
        """Conditional: only an open task becomes done (False if it was not open)."""

    def mark_many_done(
        self, task_ids: Sequence[int], now: datetime, by: str, note: str | None
    ) -> set[int]:
        """`mark_done` for many in one statement: the ids of the tasks it marked."""

    def for_address(self, address_key: str) -> list[RegisterTask]: ...
    def forget_address(self, address_key: str) -> int: ...
    def purge_done(self, before: datetime) -> int:
        """Delete the tasks done before `before` (open ones stay until done)."""


class LinkAuditRepo(Protocol):
    def add(self, event: LinkEvent) -> None: ...
    def for_selector(self, selector: str) -> list[LinkEvent]: ...
    def purge_before(self, before: datetime) -> int: ...


class BreakerRepo(Protocol):
    def tripped(self) -> bool: ...
    def trip(self, now: datetime, reason: str) -> None: ...
    def reset(self, now: datetime) -> bool: ...
    def counting_since(self) -> datetime | None: ...


class AttemptRepo(Protocol):
    def bump(self, ref: MailRef, now: datetime) -> int: ...
    def first_attempts(self, refs: Sequence[MailRef], now: datetime) -> set[str]:
        """Count a first attempt for those (of one folder) never tried; their keys. The
        others are left as they are (`bump` counts theirs when their turn comes)."""

    def clear(self, ref: MailRef) -> None: ...
    def clear_many(self, refs: Sequence[MailRef]) -> None: ...


@dataclass(frozen=True)
class StaffAccount:
    """A console account; `password_hash` is an argon2id hash, `totp_secret` the TOTP
    secret as stored (sealed, see `SecretSeal`; base32 in clear from older versions).
    `password_trimmed`: the hash may be of the password without its surrounding spaces
    (passwords set before they were kept exactly as typed)."""

    name: str
    role: str
    password_hash: str = field(repr=False)
    active: bool
    created_at: datetime
    password_changed_at: datetime
    totp_secret: str | None = field(default=None, repr=False)
    password_trimmed: bool = False


@dataclass(frozen=True)
class StaffSessionRecord:
    staff_name: str
    csrf: str = field(repr=False)
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class SignInFailures:
    failures: int
    last_failure_at: datetime
    locked_until: datetime | None


class StaffRepo(Protocol):
    def get(self, name: str) -> StaffAccount | None: ...
    def add(self, account: StaffAccount) -> None: ...
    def update(self, account: StaffAccount) -> None: ...
    def listing(self) -> list[StaffAccount]: ...
    def open_session(self, token_hash: str, record: StaffSessionRecord) -> None: ...
    def session(self, token_hash: str) -> StaffSessionRecord | None: ...
    def touch_session(self, token_hash: str, now: datetime) -> None: ...
    def close_session(self, token_hash: str) -> None: ...
    def close_sessions_of(self, name: str) -> int: ...
    def purge_sessions(self, idle_since: datetime) -> int: ...
    def use_totp_step(self, name: str, step: int) -> bool:
        """Record `step` as the account's last accepted TOTP time step; False when it, or
        a later one, was accepted already."""
        ...

    def hold_failures(self, key: str, now: datetime) -> SignInFailures | None:
        """The key's failures, locked against other sign-ins until the transaction ends."""
        ...

    def set_failures(self, key: str, state: SignInFailures) -> None: ...
    def restore_failures(
        self, key: str, counted: SignInFailures, before: SignInFailures | None
    ) -> None:
        """Take back an attempt counted as `counted`: the key returns to `before` when no
        other attempt was counted since, else it has one failure fewer."""
        ...

    def clear_failures(self, key: str) -> None: ...


class SealError(Exception):
    """A sealed secret cannot be sealed or opened (key missing or wrong); worded for the
    sysadmin, naming the setting."""


class SecretSeal(Protocol):
    """Encrypts a secret the database keeps, with a key kept outside the database."""

    def ready(self) -> bool:
        """A key is there to use (sealing with none creates one)."""
        ...

    def seal(self, secret: str) -> str: ...
    def open(self, sealed: str) -> str: ...


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    source: str
    action: str
    item: str | None = None
    detail: str | None = None
    id: int = 0


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    item: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepo(Protocol):
    """Append-only: entries are added and read, never changed or deleted."""

    def add(self, entry: AuditEntry) -> None: ...
    def add_many(self, entries: Sequence[AuditEntry]) -> None:
        """Many entries in one statement (a bulk action's, one per item)."""

    def listing(self, where: AuditFilter, limit: int, offset: int = 0) -> list[AuditEntry]: ...
    def count(self, where: AuditFilter) -> int: ...


@dataclass(frozen=True)
class ReviewFilter:
    reason: str | None = None
    kind: str | None = None
    older_than: datetime | None = None
    newer_than: datetime | None = None
    at: datetime | None = None  # hide items deferred past this moment (None: show all)
    deferred: bool = False  # with `at`: only the items still deferred at that moment


class CampaignState(StrEnum):
    """A campaign as a whole."""

    RUNNING = "running"  # sends from start_at on
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class PairState(StrEnum):
    """One (address, student) pair; once queued, the outbox row tells the rest."""

    PLANNED = "planned"
    QUEUED = "queued"
    BOUNCED = "bounced"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # to an address the school chose not to mail (PEC): never sent


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    name: str
    status: str
    start_at: datetime
    created_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class PlannedPair:
    """A pair to store: address (as on file), its key, the student, the guardians."""

    address: str
    address_key: str
    student: str
    guardians: tuple[str, ...]


@dataclass(frozen=True)
class PairRecord:
    """A stored pair with its delivery state (planned, queued, sent, failed, bounced...)."""

    address: str | None
    address_key: str
    student: str
    guardians: tuple[str, ...]
    state: str
    message_id: str | None
    queued_at: datetime | None
    sent_at: datetime | None


class CampaignRepo(Protocol):
    """Campaigns and their (address, student) pairs; the key keeps each pair unique."""

    def new_students(self) -> tuple[list[Person], list[Person]]:
        """The active new students, and every guardian of any of them."""

    def people(self, usernames: Sequence[str]) -> dict[str, Person]:
        """These people as on file now (one query), by username."""

    def get(self, name: str) -> CampaignInfo | None: ...
    def lock(self, campaign_id: int) -> None:
        """Hold the campaign's row until the end of the transaction (one top-up at a time)."""

    def create(self, name: str, start_at: datetime, now: datetime, by: str | None) -> int: ...
    def set_status(self, campaign_id: int, status: str, now: datetime) -> None: ...
    def add_pairs(
        self,
        campaign_id: int,
        pairs: Sequence[PlannedPair],
        now: datetime,
        state: str = PairState.PLANNED,
    ) -> int:
        """Store the pairs not stored yet in `state`; returns how many were new. Planned
        pairs stored as skipped become planned again (and count as new)."""

    def known_pairs(self, campaign_id: int) -> set[tuple[str, str]]: ...
    def planned(self, campaign_id: int, max_mails: int) -> list[list[PairRecord]]:
        """Up to `max_mails` groups of planned pairs, one group per address key."""

    def mark_queued(
        self,
        campaign_id: int,
        address_key: str,
        students: Sequence[str],
        message_id: str,
        now: datetime,
    ) -> int:
        """planned -> queued for these pairs; returns how many changed (0: someone else did)."""

    def in_outbox(self, campaign_id: int) -> int:
        """Mails of the campaign queued in the outbox and not sent yet."""

    def withdraw(self, campaign_id: int, to_state: str) -> int:
        """Take the campaign's unsent mail out of the outbox; its pairs become `to_state`
        (returns how many pairs)."""

    def cancel_planned(self, campaign_id: int) -> int: ...
    def drop(self, campaign_id: int, address_key: str, students: Sequence[str]) -> None:
        """Planned pairs that can no longer go (student gone or of age): cancelled."""

    def pairs(self, campaign_id: int) -> list[PairRecord]: ...
    def counts(self, campaign_id: int) -> dict[str, int]:
        """Pairs by state: planned, queued (in the outbox), sent, failed, bounced, cancelled."""

    def due(self, now: datetime) -> list[CampaignInfo]:
        """Running campaigns whose start time has come."""

    def scheduled(self) -> list[CampaignInfo]:
        """Running campaigns (past or future start)."""

    def listing(self) -> list[CampaignInfo]:
        """Every campaign, newest first."""

    def bounced(self, message_ids: Sequence[str]) -> list[PairRecord]:
        """Mark the queued pairs of these mails bounced; returns them (once)."""

    def sent_since(self, since: datetime) -> int:
        """Campaign mails queued since `since` (all campaigns: the daily cap)."""


@dataclass(frozen=True)
class WaitingRow:
    """One thing that waits for the secretariat (service/notify/waiting): its kind (a
    digest section), its number, since when it waits, and a code staff may read in a
    mail (a review reason): never a name, an address or a message's text."""

    kind: str
    id: int
    since: datetime
    code: str = ""


@dataclass(frozen=True)
class AlertRecord:
    """What the sysadmin was last told about one state: `announced` True when the last
    mail said it began; `alerted_at` when such a mail last went; `mails` counts the mails
    (it names the next one's slot)."""

    name: str
    announced: bool = False
    alerted_at: datetime | None = None
    mails: int = 0


class NoticeRepo(Protocol):
    """The digest's and the alerts' bookkeeping, and the reads of what waits."""

    def waiting_reviews(self, now: datetime) -> list[WaitingRow]: ...
    def waiting_tasks(self, now: datetime) -> list[WaitingRow]: ...
    def waiting_near_misses(self, now: datetime) -> list[WaitingRow]: ...
    def campaign_deliveries(self, since: datetime) -> dict[str, tuple[int, int]]:
        """Per campaign sending or finished since `since`: (mails delivered or bounced,
        of which bounced)."""

    def slot_taken(self, kind: str, slot: str) -> bool: ...
    def take_slot(self, kind: str, slot: str, now: datetime, mails: int) -> bool:
        """Record the slot now (in a savepoint); False when another transaction has."""

    def alerts(self) -> dict[str, AlertRecord]: ...
    def save_alert(self, record: AlertRecord) -> None: ...


class NearMissStatus(StrEnum):
    OPEN = "open"
    TREATED = "treated"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class NearMissRecord:
    """A near miss as recorded: where the message is, what the rule said, what was done."""

    id: int
    folder: str
    validity: int
    source_key: str
    created_at: datetime
    sender: str | None
    message_id: str | None
    subject: str
    excerpt: str
    rule: str
    language: str | None
    guided: bool
    status: str = NearMissStatus.OPEN
    ledger_id: int | None = None
    raw: bytes | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    outcome: str | None = None


class NearMissRepo(Protocol):
    def add(self, record: NearMissRecord, flag: bool) -> int:
        """Record a near miss; `flag`: the mailbox keyword is wanted on the message."""

    def get(self, near_miss_id: int) -> NearMissRecord | None: ...
    def listing(self, status: str | None = NearMissStatus.OPEN) -> list[NearMissRecord]: ...
    def count_open(self) -> int: ...
    def decide(
        self,
        near_miss_id: int,
        status: str,
        by: str,
        decision: str,
        outcome: str | None,
        now: datetime,
    ) -> bool:
        """Close an open near miss (False when someone closed it first); the keyword is
        then taken off the message."""

    def keyword_pending(self, folder: str, validity: int) -> list[tuple[str, bool]]:
        """(source key, keyword wanted) of the messages whose keyword is not as wanted."""

    def keyword_done(self, folder: str, validity: int, keys: Sequence[str], on: bool) -> None: ...
    def guided_since(self, sender_key: str, since: datetime) -> bool:
        """Whether the guide went to this sender since `since`."""

    def for_sender(self, address_key: str) -> list[NearMissRecord]: ...
    def forget_sender(self, address_key: str) -> list[int]:
        """Erase the sender's near misses; returns their ledger ids."""

    def purge_decided(self, before: datetime) -> int: ...


class UnitOfWork(Protocol):
    """One transaction: everything a message changes commits together or not at all."""

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

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def flush(self) -> None:
        """Run the inserts queued so far (they run by themselves before the next statement
        and at commit): a failing one raises here, pinned on what queued it."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside undoes only what it did."""

    def nudge(self) -> None:
        """Mail this transaction queues should go now: when it commits, the daemon's
        outbox worker is woken (from any process; how is the adapter's business, and a
        daemon that is not running is fine). Nothing happens on a rollback."""


class NudgeListener(Protocol):
    """The daemon's end of the nudge: one connection or socket, used by one thread."""

    def open(self) -> None:
        """Connect (or bind) and start listening; raises when it cannot."""

    def wait(self, timeout: float) -> bool:
        """True when nudged within `timeout` seconds; raises when the connection is lost."""

    def close(self) -> None:
        """Stop listening; safe to call twice, or before `open`."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, read_only: bool = False, crash_safe_only: bool = False) -> UnitOfWork:
        """A read-only unit of work never holds the write lock (it must not commit).
        `crash_safe_only`: its commit survives a crash of this process but may be lost
        with the machine or the database server; only for records whose loss repeats
        work (attempt counts, done moves, checkpoints, sent marks), never for decisions."""


@dataclass(frozen=True)
class ImportSummary:
    """What a directory import changed (or, on a dry run, would change)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    before: int = 0
    removed_people: tuple[str, ...] = ()
    retired: int = 0  # students marked inactive (left the school), never deleted
    retired_people: tuple[str, ...] = ()
    renamed: int = 0  # people on file under a made-up reference, now the register's code
    renamed_people: tuple[str, ...] = ()  # "old -> new (role, name)"

    def prune_refusal(self, max_share: float) -> str | None:
        """Why this prune (or yearly refresh) is refused without --force: it removes or
        retires too much of the directory."""
        gone = self.removed + self.retired
        if not gone or gone <= max_share * self.before:
            return None
        verb = "retire" if not self.removed else "remove or retire" if self.retired else "remove"
        return (
            f"refusing to {verb} {gone} of {self.before} people "
            f"({gone / self.before:.0%}), more than directory.max_prune_share "
            f"({max_share:.0%}); check the file, or use --force"
        )

    def as_text(self) -> str:
        text = f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
        text += f"renamed {self.renamed}, " if self.renamed else ""
        text += f"removed {self.removed}"
        return text + (f", marked inactive {self.retired}" if self.retired else "")


@dataclass(frozen=True)
class PersonView:
    """One person on file, as the directory commands show it."""

    username: str
    role: str
    first_name: str
    last_name: str
    birth_date: str | None
    class_name: str | None
    emails: tuple[str, ...]
    students: tuple[str, ...] = ()
    guardians: tuple[str, ...] = ()
    language: str | None = None
    active: bool = True
    new_student: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "birth_date": self.birth_date,
            "class": self.class_name,
            "emails": list(self.emails),
            "students": list(self.students),
            "guardians": list(self.guardians),
            "active": self.active,
            "new": self.new_student,
        }


class DirectoryAdmin(Protocol):
    """The directory as a whole: bulk import and listing (the `directory` desk)."""

    def apply(
        self,
        records: Sequence[DirectoryRecord],
        *,
        prune: bool,
        keep: Callable[[ImportSummary], bool],
        retire: bool = False,
        renames: Mapping[str, str] | None = None,
    ) -> ImportSummary:
        """Apply the records in one transaction; commit only when `keep(summary)` says so.
        `retire`: active students on file but not in the records are marked inactive.
        `renames`: old username -> new, for people on file the records name anew (the same
        person keeps its id, links and history; a new name already taken is skipped).

        Raises DirectoryError when the records do not fit together (unknown students).
        """

    def people(self, username: str | None = None) -> list[PersonView]:
        """Everyone on file (or one person), ordered by username."""

    def roles(self) -> dict[str, Role]:
        """Every username on file with its role (checks a file's links in one pass)."""

    def search(self, text: str, limit: int) -> list[PersonView]:
        """People whose username, name or an address contains `text`, at most `limit`."""

    def set_language(self, username: str, language: str | None, audit: AuditEntry) -> bool:
        """Set a person's language (ISO 639-1) with its audit entry; False: no such person."""


@dataclass
class Sheet:
    """One spreadsheet or CSV file as rows of text (the first sheet of a workbook).

    `rows` yields (line number as the secretariat sees it, cells); `total` is the number of
    rows when the reader knows it (for a progress bar)."""

    name: str
    description: str
    rows: Iterator[tuple[int, list[str]]]
    total: int | None = None


class SpreadsheetReader(Protocol):
    """Reads .xls, .xlsx and CSV bytes; raises DirectoryError for an unreadable file."""

    def open(self, name: str, data: bytes) -> Sheet: ...


@dataclass(frozen=True)
class Trace:
    """What became of one message; `outcome` None: not handled (still in the folder)."""

    message_id: str
    outcome: str | None = None
    reply: str | None = None
    reasons: tuple[str, ...] = ()


class MessageTraces(Protocol):
    """The ledger read by Message-ID, with the reply queued for each (the demo's table)."""

    def of(self, message_ids: Sequence[str]) -> dict[str, Trace]: ...
