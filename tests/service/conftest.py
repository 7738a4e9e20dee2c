"""Desks wired to the in-memory fakes (tests/fakes.py): no database, no servers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher

from credmail.adapters.sealing import KeyFileSeal
from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.samples import directory_csv
from credmail.service.desks import (
    Actor,
    AuditDesk,
    DirectoryDesk,
    LimitsDesk,
    OutboxDesk,
    PrivacyDesk,
    ReviewDesk,
    StaffDesk,
    StatusDesk,
    TokenDesk,
)
from credmail.service.links import TokenLinkIssuer
from credmail.service.outbox.queue import Mailer
from credmail.service.reply_templates import ReplyComposer
from tests.fakes import FakeClock, FakeDirectoryAdmin, FakeUnitOfWorkFactory

ROME = ZoneInfo("Europe/Rome")
FAST_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # still argon2id
CLERK = Actor("segreteria", "cli")


@dataclass
class Office:
    """Every desk over one fake store, with the clock and the store at hand."""

    clock: FakeClock
    uow: FakeUnitOfWorkFactory
    review: ReviewDesk
    outbox: OutboxDesk
    limits: LimitsDesk
    directory: DirectoryDesk
    tokens: TokenDesk
    privacy: PrivacyDesk
    status: StatusDesk
    erasures: list[str]
    staff: StaffDesk
    audit: AuditDesk


@pytest.fixture
def office(tmp_path: Path) -> Office:
    clock = FakeClock()
    uow = FakeUnitOfWorkFactory()
    composer = ReplyComposer(
        "segreteria@scuola.example.org",
        "Segreteria",
        {"school_name": "Scuola", "signature": "La segreteria", "contact": ""},
    )
    mailer = Mailer(TokenLinkIssuer("https://registro.example.org", 60), composer, ROME)
    erasures: list[str] = []
    audit = AuditDesk(uow, clock)
    office = Office(
        clock=clock,
        uow=uow,
        review=ReviewDesk(uow, mailer, clock, ROME),
        outbox=OutboxDesk(uow, clock),
        limits=LimitsDesk(uow, clock),
        directory=DirectoryDesk(
            FakeDirectoryAdmin(uow), clock, ROME, 0.2, audit, SpreadsheetFiles()
        ),
        tokens=TokenDesk(uow, clock),
        privacy=PrivacyDesk(uow, clock, after_erase=lambda: erasures.append("checkpoint")),
        status=StatusDesk(uow, clock, timedelta(minutes=10), timedelta(hours=1)),
        erasures=erasures,
        staff=StaffDesk(
            uow, clock, hasher=FAST_ARGON2, seal=KeyFileSeal(tmp_path / "totp.key", "totp_key")
        ),
        audit=audit,
    )
    today = clock().astimezone(ROME).date()
    office.directory.import_csv(directory_csv(today), CLERK, prune=False, dry_run=False)
    return office
