"""A person renamed by a directory import (a made-up reference become the register's code):
the row keeps its id, so its addresses, language, sex and guardianships stay; the places that
keep the username as text follow it in the same transaction.

- campaign pairs (`campaign_recipients.student`, and the guardians named in each pair): a
  running or finished campaign sees the pupil it already mailed, not a new one;
- open register tasks: the secretariat acts on the register's code;
- the outbox's account column: the per-account limits and "already sent" checks go on;
- link tokens: a live link keeps working when nothing but the username changed (its
  directory-state fingerprint is re-bound); any other change of the person leaves it stale,
  as for any directory change.

History stays as written: the audit log, the link audit and finished tasks keep the name
they were recorded under (the import's own audit entry lists the renames).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sqlalchemy import Connection, bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased

from credmail.adapters.db.models import (
    CampaignRecipientRow,
    OutboxRow,
    PersonRow,
    RegisterTaskRow,
    TokenRow,
)
from credmail.adapters.db.repositories._common import core
from credmail.adapters.db.repositories.directory import SqlDirectory
from credmail.service.links import directory_state

_RENAME = update(PersonRow).where(PersonRow.username == bindparam("old"))
_TASKS = update(RegisterTaskRow).where(
    RegisterTaskRow.username == bindparam("old"), RegisterTaskRow.status == "open"
)
_OUTBOX = update(OutboxRow).where(OutboxRow.username == bindparam("old"))
_TOKENS = update(TokenRow).where(TokenRow.username == bindparam("old"))
_BOUND_TOKENS = _TOKENS.where(TokenRow.state_hash == bindparam("before"))


def rename_people(session: Session, renames: Mapping[str, str]) -> dict[str, str]:
    """Rename each person on file (old -> new) whose new name is free; the renames done.
    Run before the import reads the people it updates."""
    if not renames:
        return {}
    names = [*renames, *renames.values()]
    on_file = set(session.scalars(select(PersonRow.username).where(PersonRow.username.in_(names))))
    done = {old: new for old, new in renames.items() if old in on_file and new not in on_file}
    if done:
        core(session).execute(
            _RENAME.values(username=bindparam("new")),
            [{"old": old, "new": new} for old, new in done.items()],
        )
    return done


def describe_renames(session: Session, done: Mapping[str, str]) -> tuple[str, ...]:
    """'old -> new (role, First Last)' for each rename, in the order of the old names."""
    rows = session.execute(
        select(PersonRow.username, PersonRow.role, PersonRow.first_name, PersonRow.last_name)
        .where(PersonRow.username.in_(list(done.values())))
    )  # fmt: skip
    people = {name: f"{role}, {first} {last}" for name, role, first, last in rows}
    return tuple(f"{old} -> {new} ({people.get(new, '')})" for old, new in sorted(done.items()))


def follow_renames(session: Session, done: Mapping[str, str]) -> None:
    """Carry the renames into the tables that keep a username as text (after the import
    wrote the people: a token is re-bound only to the person as now filed)."""
    if not done:
        return
    connection = core(session)
    pairs = [{"old": old, "new": new} for old, new in done.items()]
    _rename_pairs(connection, pairs)
    _rename_pair_guardians(connection, done)
    connection.execute(_TASKS.values(username=bindparam("new")), pairs)
    connection.execute(_OUTBOX.values(username=bindparam("new")), pairs)
    _rebind_tokens(session, done)
    connection.execute(_TOKENS.values(username=bindparam("new")), pairs)


def _rename_pairs(connection: Connection, pairs: list[dict[str, str]]) -> None:
    """Each pair of the old student becomes the new student's, unless the campaign already
    has that (address, new student) pair (then the old one stays as it was)."""
    pair, other = CampaignRecipientRow, aliased(CampaignRecipientRow)
    taken = exists().where(
        other.campaign_id == pair.campaign_id,
        other.address_key == pair.address_key,
        other.student == bindparam("new"),
    )
    connection.execute(
        update(pair)
        .where(pair.student == bindparam("old"), ~taken)
        .values(student=bindparam("new")),
        pairs,
    )


def _rename_pair_guardians(connection: Connection, done: Mapping[str, str]) -> None:
    """The guardians each pair names (a JSON list) under their new usernames."""
    query = select(CampaignRecipientRow.id, CampaignRecipientRow.guardians)
    changed = []
    for pair_id, guardians in connection.execute(query):
        renamed = [done.get(g, g) for g in guardians or ()]
        if renamed != list(guardians or ()):
            changed.append({"pair_id": pair_id, "renamed": renamed})
    if changed:
        connection.execute(
            update(CampaignRecipientRow)
            .where(CampaignRecipientRow.id == bindparam("pair_id"))
            .values(guardians=bindparam("renamed")),
            changed,
        )


def _rebind_tokens(session: Session, done: Mapping[str, str]) -> None:
    """A token bound to exactly this person under the old name is bound to it under the
    new one, so a link already mailed keeps working (the others follow it, stale)."""
    directory = SqlDirectory(session)
    ids = select(PersonRow.id).where(PersonRow.username.in_(list(done.values())))
    old_of = {new: old for old, new in done.items()}
    rebinds = [
        {
            "old": old_of[person.username],
            "new": person.username,
            "before": directory_state(replace(person, username=old_of[person.username])),
            "after": directory_state(person),
        }
        for person in directory.people_among(ids)
    ]
    if rebinds:
        core(session).execute(
            _BOUND_TOKENS.values(username=bindparam("new"), state_hash=bindparam("after")),
            rebinds,
        )
