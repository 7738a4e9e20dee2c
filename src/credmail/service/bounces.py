"""Bounces of our own replies: the outbox row becomes `bounced` and the secretariat gets a
review item `reply_bounced`, linked to the original request, so it knows the family
never got the link.

Only a reply credmail marked sent can bounce, once: a repeated or forged report about
the same reply changes nothing. The review item holds no copy of the report (a returned
`message/rfc822` part would carry the link itself), only which reply it was.
"""

from __future__ import annotations

from datetime import datetime

from credmail.core.addresses import AddressError, normalize_address
from credmail.core.campaign import TEMPLATE_CAMPAIGN
from credmail.core.values import MarkBounced, RequestKind
from credmail.service.pacing import STAFF_TEMPLATES
from credmail.service.ports import OutboxEntry, PairRecord, ReviewItem, UnitOfWork

REASON = "reply_bounced"
CAMPAIGN_REASON = "campaign_bounced"
STAFF_REASON = "notify_bounced"  # the digest or an alert: an address in [notify] is wrong


def record_bounce(uow: UnitOfWork, action: MarkBounced, now: datetime) -> int:
    """Mark the sent replies the report names as bounced; one review item each (a
    campaign mail: "indirizzo non valido", naming its students and the address)."""
    entries = uow.outbox.mark_bounced(action.message_ids)
    for entry in entries:
        if entry.template == TEMPLATE_CAMPAIGN:
            pairs = uow.campaigns.bounced([entry.message_id])
            uow.review.add(campaign_bounce_item(uow, entry, pairs, now), None)
        elif entry.template in STAFF_TEMPLATES:
            uow.review.add(_bounced_item(entry, now, STAFF_REASON), None)
        else:
            uow.review.add(_bounced_item(entry, now), entry.ledger_id)
    return len(entries)


def _bounced_item(entry: OutboxEntry, now: datetime, reason: str = REASON) -> ReviewItem:
    try:
        key = normalize_address(entry.recipient) if entry.recipient else None
    except AddressError:
        key = None
    subject = f"Risposta non consegnata ({entry.template}, outbox #{entry.id})"
    return ReviewItem(
        0, now, "pending", RequestKind.UNKNOWN, key, entry.message_id, subject, (reason,), None
    )


def campaign_bounce_item(
    uow: UnitOfWork, entry: OutboxEntry, pairs: list[PairRecord], now: datetime
) -> ReviewItem:
    """The secretariat calls the family: which students, which address."""
    address = entry.recipient or (pairs[0].address if pairs else None) or "?"
    named = []
    for pair in pairs:
        person = uow.directory.get(pair.student)
        name = f"{person.full_name}, " if person else ""
        named.append(f"{name}codice {pair.student}")
    students = "; ".join(named) or "studente non trovato"
    subject = f"Indirizzo non valido: {address} (studente {students})"
    try:
        key = normalize_address(address)
    except AddressError:
        key = None
    return ReviewItem(
        0,
        now,
        "pending",
        RequestKind.UNKNOWN,
        key,
        entry.message_id,
        subject,
        (CAMPAIGN_REASON,),
        None,
    )
