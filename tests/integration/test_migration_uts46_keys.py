"""Migration 0007 rewrites every stored address key in UTS 46 form, on SQLite, PostgreSQL
and a school's own schema (fleet mode), from rows written with the old IDNA 2003 keys;
rows a unique key joins are merged, different people at one address stay apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from credmail.adapters.db.engine import make_engine, upgrade
from credmail.adapters.db.models import (
    CampaignRecipientRow,
    CampaignRow,
    EmailRow,
    OutboxRow,
    PersonRow,
    RegisterTaskRow,
    ReviewRow,
    TokenRow,
)
from tests.conftest import PG_URL
from tests.support.requests import request

pytestmark = pytest.mark.integration

BEFORE = "0006_16"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SHARP = "a@xn--strae-oqa.de"  # the UTS 46 key of a@straße.de
OLD = "a@strasse.de"  # its IDNA 2003 key
SNOWMAN_OLD = "c@xn--n3h.net"  # IDNA 2003 key of c@☃.net, which has no UTS 46 key
FLEET_SCHEMA = "h1_uts46_keys"


def _old_rows(session: Session) -> None:
    """What credmail 0006 stored: keys from the stdlib's IDNA 2003 codec."""
    ada = PersonRow(username="G1", role="guardian", first_name="Ada", last_name="Rossi")
    ugo = PersonRow(username="G2", role="guardian", first_name="Ugo", last_name="Bassi")
    ada.emails = [
        EmailRow(position=0, address="a@straße.de", address_key=OLD),
        EmailRow(position=1, address="a@xn--strae-oqa.de", address_key=SHARP),
        EmailRow(position=2, address="b@strasse.de", address_key="b@strasse.de"),
    ]
    ugo.emails = [
        EmailRow(position=0, address="A@Straße.de", address_key=OLD),
        EmailRow(position=1, address="c@☃.net", address_key=SNOWMAN_OLD),
    ]
    session.add_all([ada, ugo])
    token = dict(token_hash="0" * 64, state_hash="0" * 64, created_at=NOW, expires_at=NOW)
    session.add_all(
        [
            TokenRow(
                selector="t1",
                username="G1",
                purpose="adult_reset",
                address="a@straße.de",
                address_key=OLD,
                **token,
            ),
            TokenRow(
                selector="t2",
                username="G1",
                purpose="adult_reset",
                address=None,
                address_key=None,
                **token,
            ),
            RegisterTaskRow(
                selector="r1",
                username="G1",
                purpose="adult_reset",
                role="guardian",
                first_name="Ada",
                last_name="Rossi",
                address="a@straße.de",
                address_key=OLD,
                requested_at=NOW,
                confirmed_at=NOW,
                status="open",
            ),
            _outbox("<o1@scuola.it>", "a@straße.de", OLD),
            _outbox("<o2@scuola.it>", "b@strasse.de", "b@strasse.de"),
        ]
    )
    _old_campaign(session)
    _old_review_items(session)


def _outbox(message_id: str, recipient: str, key: str) -> OutboxRow:
    return OutboxRow(
        message_id=message_id,
        template="link_adult",
        recipient=recipient,
        recipient_key=key,
        envelope_from="segreteria@scuola.it",
        status="sent",
        attempts=1,
        created_at=NOW,
        next_attempt_at=NOW,
    )


def _old_campaign(session: Session) -> None:
    campaign = CampaignRow(name="settembre", status="running", created_at=NOW, start_at=NOW)
    session.add(campaign)
    session.flush()
    pair = dict(campaign_id=campaign.id, student="S1", created_at=NOW)
    session.add_all(
        [
            CampaignRecipientRow(
                address="a@straße.de", address_key=OLD, guardians=["G1"], state="planned", **pair
            ),
            CampaignRecipientRow(
                address="a@xn--strae-oqa.de",
                address_key=SHARP,
                guardians=["G2"],
                state="queued",
                message_id="<c1@scuola.it>",
                **pair,
            ),
            CampaignRecipientRow(
                address="a@straße.de",
                address_key=OLD,
                guardians=["G1"],
                state="planned",
                **{**pair, "student": "S2"},
            ),
        ]
    )


def _old_review_items(session: Session) -> None:
    utf8_from = request("placeholder@example.org").replace(
        b"placeholder@example.org", "a@straße.de".encode()
    )
    item = dict(created_at=NOW, status="pending", kind="adult", subject="", reasons=[])
    session.add_all(
        [
            ReviewRow(sender=OLD, message_id="<in1@example.org>", raw=utf8_from, **item),
            ReviewRow(sender=OLD, message_id="<o1@scuola.it>", raw=None, **item),  # a bounce
            ReviewRow(sender=None, message_id=None, raw=b"Subject: x\r\n", **item),
        ]
    )


def _migrated(engine: Engine) -> None:
    upgrade(engine, BEFORE)
    with Session(engine) as session:
        _old_rows(session)
        session.commit()
    upgrade(engine)


def _check(engine: Engine) -> None:
    with Session(engine) as session:
        emails = {
            (row.person.username, row.address): row.address_key
            for row in session.scalars(select(EmailRow))
        }
        assert emails == {
            ("G1", "a@straße.de"): SHARP,  # merged with its A-label twin (listed first)
            ("G1", "b@strasse.de"): "b@strasse.de",
            ("G2", "A@Straße.de"): SHARP,  # another person at the same address: kept
            ("G2", "c@☃.net"): SNOWMAN_OLD,  # no UTS 46 key: left as it was
        }
        tokens = {row.selector: row.address_key for row in session.scalars(select(TokenRow))}
        assert tokens == {"t1": SHARP, "t2": None}
        assert session.scalars(select(RegisterTaskRow.address_key)).all() == [SHARP]
        outbox = dict(session.execute(select(OutboxRow.message_id, OutboxRow.recipient_key)).all())
        assert outbox == {"<o1@scuola.it>": SHARP, "<o2@scuola.it>": "b@strasse.de"}
        pairs = session.scalars(select(CampaignRecipientRow).order_by(CampaignRecipientRow.id))
        assert [(p.student, p.address_key, p.state, p.guardians) for p in pairs] == [
            ("S1", SHARP, "queued", ["G1", "G2"]),  # the queued pair kept, with both guardians
            ("S2", SHARP, "planned", ["G1"]),
        ]
        senders = session.scalars(select(ReviewRow.sender).order_by(ReviewRow.id)).all()
        assert senders == [SHARP, SHARP, None]


def test_keys_are_rewritten_and_merged(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        _migrated(engine)
        _check(engine)
    finally:
        engine.dispose()


@pytest.fixture
def school_schema() -> Iterator[str]:
    def drop() -> None:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{FLEET_SCHEMA}" CASCADE'))
        admin.dispose()

    drop()
    yield FLEET_SCHEMA
    drop()


def test_keys_are_rewritten_in_a_schools_own_schema(school_schema: str) -> None:
    engine = make_engine(PG_URL, schema=school_schema)
    try:
        _migrated(engine)
        _check(engine)
    finally:
        engine.dispose()
    admin = create_engine(PG_URL)
    with admin.connect() as conn:
        versions = text(f'SELECT version_num FROM "{school_schema}".alembic_version')  # noqa: S608
        assert conn.execute(versions).scalar() == "0007_uts46_keys"
    admin.dispose()
