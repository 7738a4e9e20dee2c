"""SQLAlchemy repository: what waits for the secretariat (read for the digest) and the
notifications' bookkeeping (each digest slot and alert queued exactly once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credmail.adapters.db.models import (
    AlertStateRow,
    CampaignRow,
    NearMissRow,
    NotificationRow,
    RegisterTaskRow,
    ReviewRow,
)
from credmail.adapters.db.repositories.campaigns import SqlCampaigns
from credmail.adapters.db.repositories.review import in_queue
from credmail.service.ports import AlertRecord, CampaignState, NearMissStatus, WaitingRow

REVIEW, TASK, NEAR_MISS = "review", "task", "near_miss"


class SqlNotices:
    def __init__(self, session: Session) -> None:
        self.session = session

    def waiting_reviews(self, now: datetime) -> list[WaitingRow]:
        query = (
            select(ReviewRow.id, ReviewRow.created_at, ReviewRow.reasons)
            .where(in_queue(now))  # a deferred request only once it is due again
            .order_by(ReviewRow.created_at, ReviewRow.id)
        )
        return [
            WaitingRow(REVIEW, item_id, since, (reasons or [""])[0])
            for item_id, since, reasons in self.session.execute(query)
        ]

    def waiting_tasks(self, now: datetime) -> list[WaitingRow]:
        query = (
            select(RegisterTaskRow.id, RegisterTaskRow.confirmed_at)
            .where(RegisterTaskRow.status == "open")
            .order_by(RegisterTaskRow.confirmed_at, RegisterTaskRow.id)
        )
        return [WaitingRow(TASK, task_id, since) for task_id, since in self.session.execute(query)]

    def waiting_near_misses(self, now: datetime) -> list[WaitingRow]:
        query = (
            select(NearMissRow.id, NearMissRow.created_at)
            .where(NearMissRow.status == NearMissStatus.OPEN)
            .order_by(NearMissRow.created_at, NearMissRow.id)
        )
        return [WaitingRow(NEAR_MISS, nid, since) for nid, since in self.session.execute(query)]

    def campaign_deliveries(self, since: datetime) -> dict[str, tuple[int, int]]:
        """(mails that reached a server, of which bounced) per campaign still sending or
        finished since `since` (bounces arrive after the last mail left)."""
        query = select(CampaignRow.id, CampaignRow.name).where(
            CampaignRow.status != CampaignState.CANCELLED,
            (CampaignRow.finished_at.is_(None)) | (CampaignRow.finished_at >= since),
        )
        campaigns = SqlCampaigns(self.session)
        found = {}
        for campaign_id, name in self.session.execute(query):
            counts = campaigns.counts(campaign_id)
            bounced = counts.get("bounced", 0)
            found[name] = (counts.get("sent", 0) + bounced, bounced)
        return found

    def slot_taken(self, kind: str, slot: str) -> bool:
        query = select(exists().where(NotificationRow.kind == kind, NotificationRow.slot == slot))
        return bool(self.session.scalar(query))

    def take_slot(self, kind: str, slot: str, now: datetime, mails: int) -> bool:
        values = {"kind": kind, "slot": slot, "created_at": now, "mails": mails}
        try:
            with self.session.begin_nested():
                self.session.execute(insert(NotificationRow).values(**values))
        except IntegrityError:  # another process queued this slot first
            return False
        return True

    def alerts(self) -> dict[str, AlertRecord]:
        rows = self.session.scalars(select(AlertStateRow))
        return {
            row.name: AlertRecord(row.name, row.announced, row.alerted_at, row.mails)
            for row in rows
        }

    def save_alert(self, record: AlertRecord) -> None:
        row = self.session.get(AlertStateRow, record.name)
        if row is None:
            row = AlertStateRow(name=record.name)
            self.session.add(row)
        row.announced, row.alerted_at, row.mails = record.announced, record.alerted_at, record.mails
        self.session.flush()
