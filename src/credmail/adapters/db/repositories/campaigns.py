"""SQLAlchemy repository: campaigns and their (address, student) pairs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db.models import (
    CampaignRecipientRow,
    CampaignRow,
    GuardianshipRow,
    OutboxRow,
    PersonRow,
)
from credmail.adapters.db.repositories._common import rowcount
from credmail.adapters.db.repositories.directory import SqlDirectory
from credmail.core.campaign import TEMPLATE_CAMPAIGN
from credmail.core.values import Person, Role
from credmail.service.ports import (
    CampaignInfo,
    CampaignState,
    OutboxStatus,
    PairRecord,
    PairState,
    PlannedPair,
)

Pair = CampaignRecipientRow


def _info(row: CampaignRow) -> CampaignInfo:
    return CampaignInfo(row.id, row.name, row.status, row.start_at, row.created_at, row.finished_at)


def _record(row: Pair, outbox_status: str | None, sent_at: datetime | None) -> PairRecord:
    state = row.state
    if state == PairState.QUEUED and outbox_status is not None:
        shown: dict[str, str] = {
            OutboxStatus.PENDING: PairState.QUEUED,
            OutboxStatus.SENT: "sent",
            OutboxStatus.FAILED: "failed",
            OutboxStatus.BOUNCED: PairState.BOUNCED,
        }
        state = shown.get(outbox_status, outbox_status)
    return PairRecord(
        row.address,
        row.address_key,
        row.student,
        tuple(row.guardians or ()),
        state,
        row.message_id,
        row.queued_at,
        sent_at,
    )


class SqlCampaigns:
    def __init__(self, session: Session) -> None:
        self.session = session

    def new_students(self) -> tuple[list[Person], list[Person]]:
        directory = SqlDirectory(self.session)
        new = (PersonRow.role == Role.STUDENT.value, PersonRow.new_student.is_(True))
        students = directory.people_among(
            select(PersonRow.id).where(*new, PersonRow.active.is_not(False))
        )
        new_ids = select(PersonRow.id).where(*new)
        guardians = directory.people_among(
            select(GuardianshipRow.guardian_id).where(GuardianshipRow.student_id.in_(new_ids))
        )
        return students, guardians

    def people(self, usernames: Sequence[str]) -> dict[str, Person]:
        ids = select(PersonRow.id).where(PersonRow.username.in_(list(usernames)))
        return {p.username: p for p in SqlDirectory(self.session).people_among(ids)}

    def get(self, name: str) -> CampaignInfo | None:
        row = self.session.scalar(select(CampaignRow).where(CampaignRow.name == name))
        return _info(row) if row else None

    def lock(self, campaign_id: int) -> None:
        self.session.execute(
            select(CampaignRow.id).where(CampaignRow.id == campaign_id).with_for_update()
        )

    def create(self, name: str, start_at: datetime, now: datetime, by: str | None) -> int:
        row = CampaignRow(
            name=name,
            status=CampaignState.RUNNING,
            created_at=now,
            start_at=start_at,
            created_by=by,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def set_status(self, campaign_id: int, status: str, now: datetime) -> None:
        finished = now if status in (CampaignState.DONE, CampaignState.CANCELLED) else None
        self.session.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id)
            .values(status=status, finished_at=finished)
        )

    def known_pairs(self, campaign_id: int) -> set[tuple[str, str]]:
        query = select(Pair.address_key, Pair.student).where(Pair.campaign_id == campaign_id)
        return {(key, student) for key, student in self.session.execute(query)}

    def add_pairs(
        self,
        campaign_id: int,
        pairs: Sequence[PlannedPair],
        now: datetime,
        state: str = PairState.PLANNED,
    ) -> int:
        known = self.known_pairs(campaign_id)
        fresh = [p for p in pairs if (p.address_key, p.student) not in known]
        self.session.add_all(
            Pair(
                campaign_id=campaign_id,
                address=p.address,
                address_key=p.address_key,
                student=p.student,
                guardians=list(p.guardians),
                state=state,
                created_at=now,
            )
            for p in fresh
        )
        self.session.flush()  # the unique key refuses a pair a concurrent start stored
        revived = self._replan_skipped(campaign_id, pairs) if state == PairState.PLANNED else 0
        return len(fresh) + revived

    def _replan_skipped(self, campaign_id: int, pairs: Sequence[PlannedPair]) -> int:
        """Skipped pairs the plan now sends (the school chose to mail PEC boxes)."""
        wanted = {(p.address_key, p.student) for p in pairs}
        skipped = self.session.scalars(
            select(Pair).where(Pair.campaign_id == campaign_id, Pair.state == PairState.SKIPPED)
        )
        revived = [row for row in skipped if (row.address_key, row.student) in wanted]
        for row in revived:
            row.state = PairState.PLANNED
        self.session.flush()
        return len(revived)

    def planned(self, campaign_id: int, max_mails: int) -> list[list[PairRecord]]:
        keys = list(
            self.session.scalars(
                select(Pair.address_key)
                .where(Pair.campaign_id == campaign_id, Pair.state == PairState.PLANNED)
                .group_by(Pair.address_key)
                .order_by(func.min(Pair.id))
                .limit(max_mails)
            )
        )
        if not keys:
            return []
        rows = self.session.scalars(
            select(Pair)
            .where(
                Pair.campaign_id == campaign_id,
                Pair.state == PairState.PLANNED,
                Pair.address_key.in_(keys),
            )
            .order_by(Pair.address_key, Pair.student)
        )
        groups: dict[str, list[PairRecord]] = {}
        for row in rows:
            groups.setdefault(row.address_key, []).append(_record(row, None, None))
        return [groups[key] for key in keys if key in groups]

    def mark_queued(
        self,
        campaign_id: int,
        address_key: str,
        students: Sequence[str],
        message_id: str,
        now: datetime,
    ) -> int:
        query = (
            update(Pair)
            .where(
                Pair.campaign_id == campaign_id,
                Pair.address_key == address_key,
                Pair.student.in_(list(students)),
                Pair.state == PairState.PLANNED,
            )
            .values(state=PairState.QUEUED, message_id=message_id, queued_at=now)
        )
        return rowcount(self.session.execute(query))

    def _unsent(self, campaign_id: int) -> list[str]:
        message_ids = select(Pair.message_id).where(
            Pair.campaign_id == campaign_id, Pair.state == PairState.QUEUED
        )
        query = select(OutboxRow.message_id).where(
            OutboxRow.message_id.in_(message_ids), OutboxRow.status == OutboxStatus.PENDING
        )
        return list(self.session.scalars(query))

    def in_outbox(self, campaign_id: int) -> int:
        return len(self._unsent(campaign_id))

    def withdraw(self, campaign_id: int, to_state: str) -> int:
        """Lock the unsent rows first: one being sent right now is waited for, then left
        alone (it is no longer pending)."""
        message_ids = select(Pair.message_id).where(
            Pair.campaign_id == campaign_id, Pair.state == PairState.QUEUED
        )
        locked = list(
            self.session.scalars(
                select(OutboxRow.message_id)
                .where(
                    OutboxRow.message_id.in_(message_ids),
                    OutboxRow.status == OutboxStatus.PENDING,
                )
                .with_for_update()
            )
        )
        if not locked:
            return 0
        self.session.execute(
            delete(OutboxRow).where(
                OutboxRow.message_id.in_(locked), OutboxRow.status == OutboxStatus.PENDING
            )
        )
        values: dict[str, object] = {"state": to_state}
        if to_state == PairState.PLANNED:
            values |= {"message_id": None, "queued_at": None}
        result = self.session.execute(
            update(Pair)
            .where(Pair.campaign_id == campaign_id, Pair.message_id.in_(locked))
            .values(**values)
        )
        return rowcount(result)

    def cancel_planned(self, campaign_id: int) -> int:
        query = (
            update(Pair)
            .where(Pair.campaign_id == campaign_id, Pair.state == PairState.PLANNED)
            .values(state=PairState.CANCELLED)
        )
        return rowcount(self.session.execute(query))

    def drop(self, campaign_id: int, address_key: str, students: Sequence[str]) -> None:
        self.session.execute(
            update(Pair)
            .where(
                Pair.campaign_id == campaign_id,
                Pair.address_key == address_key,
                Pair.student.in_(list(students)),
                Pair.state == PairState.PLANNED,
            )
            .values(state=PairState.CANCELLED)
        )

    def pairs(self, campaign_id: int) -> list[PairRecord]:
        query = (
            select(Pair, OutboxRow.status, OutboxRow.sent_at)
            .outerjoin(OutboxRow, OutboxRow.message_id == Pair.message_id)
            .where(Pair.campaign_id == campaign_id)
            .order_by(Pair.address_key, Pair.student)
        )
        return [_record(row, status, sent) for row, status, sent in self.session.execute(query)]

    def counts(self, campaign_id: int) -> dict[str, int]:
        query = (
            select(Pair.state, OutboxRow.status, func.count())
            .outerjoin(OutboxRow, OutboxRow.message_id == Pair.message_id)
            .where(Pair.campaign_id == campaign_id)
            .group_by(Pair.state, OutboxRow.status)
        )
        counts: dict[str, int] = {}
        for state, status, count in self.session.execute(query):
            shown = _record(
                Pair(address_key="", student="", state=state, guardians=[]), status, None
            ).state
            counts[shown] = counts.get(shown, 0) + int(count)
        return counts

    def due(self, now: datetime) -> list[CampaignInfo]:
        query = select(CampaignRow).where(
            CampaignRow.status == CampaignState.RUNNING, CampaignRow.start_at <= now
        )
        return [_info(row) for row in self.session.scalars(query.order_by(CampaignRow.id))]

    def scheduled(self) -> list[CampaignInfo]:
        query = select(CampaignRow).where(CampaignRow.status == CampaignState.RUNNING)
        return [_info(row) for row in self.session.scalars(query.order_by(CampaignRow.id))]

    def listing(self) -> list[CampaignInfo]:
        query = select(CampaignRow).order_by(CampaignRow.id.desc())
        return [_info(row) for row in self.session.scalars(query)]

    def bounced(self, message_ids: Sequence[str]) -> list[PairRecord]:
        if not message_ids:
            return []
        rows = list(
            self.session.scalars(
                select(Pair)
                .where(Pair.message_id.in_(list(message_ids)), Pair.state == PairState.QUEUED)
                .with_for_update()
            )
        )
        for row in rows:
            row.state = PairState.BOUNCED
        self.session.flush()
        return [_record(row, None, None) for row in rows]

    def sent_since(self, since: datetime) -> int:
        query = select(func.count()).where(
            OutboxRow.template == TEMPLATE_CAMPAIGN, OutboxRow.created_at >= since
        )
        return int(self.session.scalar(query) or 0)
