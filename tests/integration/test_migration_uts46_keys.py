"""Migration 0007 rewrites every stored address key in UTS 46 form, on SQLite, PostgreSQL
and a school's own schema (fleet mode), from rows written with the old IDNA 2003 keys;
rows a unique key joins are merged, different people at one address stay apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from credmail.adapters.db.engine import HEAD_REVISION, make_engine, upgrade
from credmail.adapters.db.models import (
    CampaignRecipientRow,
    EmailRow,
    OutboxRow,
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


def _insert(conn: Connection, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Rows as credmail 0006 wrote them: into the table as it is at that revision (the
    models describe the newest schema, which may have more columns)."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    conn.execute(insert(table), rows)


def _old_rows(conn: Connection) -> None:
    """What credmail 0006 stored: keys from the stdlib's IDNA 2003 codec."""
    person = dict(role="guardian", new_student=False, active=True)
    _insert(
        conn,
        "people",
        [
            dict(id=1, username="G1", first_name="Ada", last_name="Rossi", **person),
            dict(id=2, username="G2", first_name="Ugo", last_name="Bassi", **person),
        ],
    )
    _insert(
        conn,
        "person_emails",
        [
            dict(person_id=1, position=0, address="a@straße.de", address_key=OLD),
            dict(person_id=1, position=1, address="a@xn--strae-oqa.de", address_key=SHARP),
            dict(person_id=1, position=2, address="b@strasse.de", address_key="b@strasse.de"),
            dict(person_id=2, position=0, address="A@Straße.de", address_key=OLD),
            dict(person_id=2, position=1, address="c@☃.net", address_key=SNOWMAN_OLD),
        ],
    )
    token = dict(
        token_hash="0" * 64,
        state_hash="0" * 64,
        created_at=NOW,
        expires_at=NOW,
        username="G1",
        purpose="adult_reset",
    )
    _insert(
        conn,
        "link_tokens",
        [
            dict(selector="t1", address="a@straße.de", address_key=OLD, **token),
            dict(selector="t2", address=None, address_key=None, **token),
        ],
    )
    task = dict(
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
    )
    _insert(conn, "register_tasks", [task])
    _insert(
        conn,
        "outbox",
        [
            _outbox("<o1@scuola.it>", "a@straße.de", OLD),
            _outbox("<o2@scuola.it>", "b@strasse.de", "b@strasse.de"),
        ],
    )
    _old_campaign(conn)
    _old_review_items(conn)


def _outbox(message_id: str, recipient: str, key: str) -> dict[str, Any]:
    return dict(
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


def _old_campaign(conn: Connection) -> None:
    campaign = dict(id=1, name="settembre", status="running", created_at=NOW, start_at=NOW)
    _insert(conn, "campaigns", [campaign])
    pair = dict(campaign_id=1, student="S1", created_at=NOW, message_id=None)
    _insert(
        conn,
        "campaign_recipients",
        [
            dict(address="a@straße.de", address_key=OLD, guardians=["G1"], state="planned", **pair),
            dict(
                address="a@xn--strae-oqa.de",
                address_key=SHARP,
                guardians=["G2"],
                state="queued",
                **{**pair, "message_id": "<c1@scuola.it>"},
            ),
            dict(
                address="a@straße.de",
                address_key=OLD,
                guardians=["G1"],
                state="planned",
                **{**pair, "student": "S2"},
            ),
        ],
    )


def _old_review_items(conn: Connection) -> None:
    utf8_from = request("placeholder@example.org").replace(
        b"placeholder@example.org", "a@straße.de".encode()
    )
    item = dict(created_at=NOW, status="pending", kind="adult", subject="", reasons=[])
    _insert(
        conn,
        "review_items",
        [
            dict(sender=OLD, message_id="<in1@example.org>", raw=utf8_from, **item),
            dict(sender=OLD, message_id="<o1@scuola.it>", raw=None, **item),  # a bounce
            dict(sender=None, message_id=None, raw=b"Subject: x\r\n", **item),
        ],
    )


def _migrated(engine: Engine) -> None:
    upgrade(engine, BEFORE)
    with engine.begin() as conn:
        _old_rows(conn)
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
        assert conn.execute(versions).scalar() == HEAD_REVISION
    admin.dispose()
