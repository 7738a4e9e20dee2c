"""What credmail holds about an address, erasing it on request, and scheduled retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from credmail.core.addresses import normalize_address
from credmail.service.ports import UnitOfWork

CONSOLE_IDLE_TIMEOUT = timedelta(minutes=30)  # a console session ends after this long idle


def show(uow: UnitOfWork, address: str, now: datetime) -> dict[str, Any]:
    """Everything stored about one address, as JSON-ready data (for the DPO)."""
    key = normalize_address(address)
    people = uow.directory.people_with_address(key)
    return {
        "address": key,
        "directory": [
            {
                "username": p.username,
                "role": p.role.value,
                "name": p.full_name,
                "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            }
            for p in people
        ],
        "review_items": [
            {
                "id": i.id,
                "status": i.status,
                "created_at": i.created_at.isoformat(),
                "subject": i.subject,
                "reasons": list(i.reasons),
                "has_raw_message": bool(i.raw),
            }
            for i in uow.review.for_sender(key)
        ],
        "outbox": [
            {
                "id": o.id,
                "template": o.template,
                "status": o.status,
                "created_at": o.created_at.isoformat(),
                "last_error": o.last_error,
            }
            for o in uow.outbox.for_recipient(key)
        ],
        "link_tokens": [
            {
                "username": t.username,
                "purpose": t.purpose,
                "created_at": t.created_at.isoformat(),
                "expired": t.expires_at <= now,
                "used": t.used_at is not None,
                "revoked": t.revoked_at is not None,
            }
            for t in uow.tokens.for_address(key)
        ],
        "register_tasks": [
            {
                "id": t.id,
                "username": t.username,
                "status": t.status,
                "confirmed_at": t.confirmed_at.isoformat(),
                "done_at": t.done_at.isoformat() if t.done_at else None,
            }
            for t in uow.tasks.for_address(key)
        ],
        "remembered_addresses": [  # added to a person by the secretariat (on file)
            {"username": r.username, "added_by": r.added_by, "added_at": r.added_at.isoformat()}
            for r in uow.remembered.for_address(key)
        ],
        "near_misses": [
            {
                "id": n.id,
                "status": n.status,
                "created_at": n.created_at.isoformat(),
                "subject": n.subject,
                "rule": n.rule,
                "guided": n.guided,
            }
            for n in uow.near_misses.for_sender(key)
        ],
    }


def forget(uow: UnitOfWork, address: str) -> dict[str, int]:
    """Erase the address's review items, outgoing mail and tokens, and the address where
    the secretariat added it to a person (the register's directory stays)."""
    key = normalize_address(address)
    review_ledger = uow.review.forget_sender(key)
    outbox_ledger = uow.outbox.forget_recipient(key)
    near_ledger = uow.near_misses.forget_sender(key)
    return {
        "review_items": len(review_ledger),
        "near_misses": len(near_ledger),
        "outbox": len(outbox_ledger),
        "link_tokens": uow.tokens.forget_address(key),
        "register_tasks": uow.tasks.forget_address(key),
        "remembered_addresses": uow.remembered.forget_address(key),
        "ledger_message_ids": uow.ledger.forget_message_ids(
            sorted({*review_ledger, *outbox_ledger, *near_ledger})
        ),
    }


@dataclass(frozen=True)
class Retention:
    days: int = 30
    token_grace: timedelta = timedelta(days=1)

    def run(self, uow: UnitOfWork, now: datetime) -> dict[str, int]:
        cutoff = now - timedelta(days=self.days)
        return {
            "review_items": uow.review.purge_decided(cutoff),
            "near_misses": uow.near_misses.purge_decided(cutoff),
            "outbox": uow.outbox.scrub_before(cutoff),
            "ledger": uow.ledger.scrub_before(cutoff),
            "tokens": uow.tokens.purge_expired(now - self.token_grace),
            "register_tasks": uow.tasks.purge_done(cutoff),
            "link_audit": uow.link_audit.purge_before(cutoff),
            "staff_sessions": uow.staff.purge_sessions(now - CONSOLE_IDLE_TIMEOUT),
        }
