"""address keys rewritten in UTS 46 form (IDNA 2008, non-transitional A-labels)

Every stored address key is computed again with core.addresses.normalize_address, the
product's one key function, from the address the row keeps (the key itself where it
keeps none): directory addresses, link tokens, register tasks, the outbox, campaign
pairs, and the review queue's sender (from the stored mail, else from the outbox row of
a failed delivery). Under the old IDNA 2003 keys `a@straße.de` was `a@strasse.de` and
`a@xn--strae-oqa.de` another key; both are now `a@xn--strae-oqa.de`.

Where a unique constraint holds, rows that now share a key are merged: two spellings of
one address of the same person keep the first listed (`person_emails`); two pairs of one
campaign, address and student keep the one that went furthest (queued or bounced, then
planned, then cancelled), with both pairs' guardians. Different people at one address
stay two people, as they always could. An address with no UTS 46 key (a symbol in the
domain, a joiner in a Latin label) keeps its old key: no sender can match it any more,
so its mail goes to review.

Runs in the school's schema in fleet mode (the connection's search_path). Downgrade
leaves the keys as they are: the older code then finds no one at an address whose key
changed (a U-label with ß, ς or a joiner) and sends that mail to review.

Revision ID: 0007_uts46_keys
Revises: 0006_16
Create Date: 2026-12-07 20:30:00
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from credmail.core.addresses import address_key
from credmail.core.parse import parse_message

revision = "0007_uts46_keys"
down_revision = "0006_16"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 500
# (table, key column, column of the address as written)
KEYED = (
    ("person_emails", "address_key", "address"),
    ("link_tokens", "address_key", "address"),
    ("register_tasks", "address_key", "address"),
    ("outbox", "recipient_key", "recipient"),
    ("campaign_recipients", "address_key", "address"),
)
CAMPAIGN_STATES = ("queued", "bounced", "planned", "cancelled")  # the furthest first


def upgrade() -> None:
    connection = op.get_bind()
    for name, key, source in KEYED:
        table = sa.table(name, sa.column("id"), sa.column(key), sa.column(source))
        rows = connection.execute(sa.select(table.c.id, table.c[key], table.c[source]))
        found = {i: (old, written or old) for i, old, written in rows if written or old}
        _rewrite(connection, table, key, found)
    review = sa.table("review_items", sa.column("id"), sa.column("sender"))
    _rewrite(connection, review, "sender", dict(_review_senders(connection)))


def downgrade() -> None:
    """Keys stay in UTS 46 form (see the module)."""


def _rewrite(
    connection: sa.Connection,
    table: sa.TableClause,
    key: str,
    found: dict[int, tuple[str | None, str]],
) -> None:
    """Set each row's key to the key of its source, merging rows a unique key joins."""
    new = {i: address_key(source) or old for i, (old, source) in found.items()}
    changed = {i: k for i, k in new.items() if k is not None and k != found[i][0]}
    if not changed:
        return
    dropped = set(_merged(connection, table.name, new, changed))
    this_row = table.c.id == sa.bindparam("b_id")
    if dropped:
        connection.execute(table.delete().where(this_row), [{"b_id": i} for i in dropped])
    changed = {i: k for i, k in changed.items() if i not in dropped}
    update = table.update().where(this_row).values({key: sa.bindparam("b_key")})
    # through a placeholder first: a row may take a key another row is about to leave
    connection.execute(update, [{"b_id": i, "b_key": f"~0007~{i}"} for i in changed])
    connection.execute(update, [{"b_id": i, "b_key": k} for i, k in changed.items()])
    log.info("%s.%s: %d keys rewritten, %d merged", table.name, key, len(changed), len(dropped))


def _merged(
    connection: sa.Connection, table: str, new: dict[int, str | None], changed: dict[int, str]
) -> list[int]:
    """The rows a unique constraint no longer allows (the others of each group)."""
    if table == "person_emails":
        rows = connection.execute(
            sa.text("SELECT id, person_id FROM person_emails ORDER BY position, id")
        )
        return [i for group in _groups(rows, new, changed) for i in group[1:]]
    if table == "campaign_recipients":
        return _merged_pairs(connection, new, changed)
    return []


def _groups(
    rows: Iterable[Sequence[Any]], new: dict[int, str | None], changed: dict[int, str]
) -> list[list[int]]:
    """Ids of `rows` (id, owner...), best first, that share owner and new key with a
    changed row: the groups of two or more."""
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for row_id, *owner in rows:
        by_key.setdefault((*owner, new[row_id]), []).append(row_id)
    return [ids for ids in by_key.values() if len(ids) > 1 and any(i in changed for i in ids)]


def _merged_pairs(
    connection: sa.Connection, new: dict[int, str | None], changed: dict[int, str]
) -> list[int]:
    """Keep the pair that went furthest, with the guardians of all."""
    query = sa.text(
        "SELECT id, campaign_id, student, state, guardians FROM campaign_recipients"
    ).columns(guardians=sa.JSON())
    rows = list(connection.execute(query))
    rows.sort(key=lambda row: (_progress(row.state), row.id))
    guardians = {row.id: row.guardians or [] for row in rows}
    update = sa.text("UPDATE campaign_recipients SET guardians = :g WHERE id = :id")
    update = update.bindparams(sa.bindparam("g", type_=sa.JSON()))
    losers = []
    for ids in _groups(((r.id, r.campaign_id, r.student) for r in rows), new, changed):
        joined = sorted({g for i in ids for g in guardians[i]})
        connection.execute(update, {"id": ids[0], "g": joined})
        losers += ids[1:]
    return losers


def _progress(state: str) -> int:
    return CAMPAIGN_STATES.index(state) if state in CAMPAIGN_STATES else len(CAMPAIGN_STATES)


def _review_senders(connection: sa.Connection) -> Iterator[tuple[int, tuple[str, str]]]:
    """(id, (stored key, source)) of each review item with a sender: the sender parsed
    from the stored mail, else the recipient of the failed delivery it reports."""
    recipients = {m: r for m, r in connection.execute(sa.text(_FAILED_DELIVERIES))}
    ids = [row_id for (row_id,) in connection.execute(sa.text(_REVIEW_IDS))]
    for batch in _batches(ids):
        query = sa.text(_REVIEW_ROWS).bindparams(sa.bindparam("ids", expanding=True))
        for row_id, sender, message_id, raw in connection.execute(query, {"ids": batch}):
            parsed = parse_message(bytes(raw)).sender if raw else None
            yield row_id, (sender, parsed or recipients.get(message_id) or sender)


_FAILED_DELIVERIES = (
    "SELECT o.message_id, o.recipient FROM outbox o JOIN review_items r"
    " ON r.message_id = o.message_id WHERE r.raw IS NULL AND r.sender IS NOT NULL"
)
_REVIEW_IDS = "SELECT id FROM review_items WHERE sender IS NOT NULL"
_REVIEW_ROWS = "SELECT id, sender, message_id, raw FROM review_items WHERE id IN :ids"


def _batches(ids: list[int]) -> Iterable[list[int]]:
    """A few hundred rows at a time: review items keep whole mails."""
    return (ids[start : start + BATCH] for start in range(0, len(ids), BATCH))
