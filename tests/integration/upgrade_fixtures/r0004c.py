"""0004c: the delivery state, the outbox's token selector."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0004c"
AT = "2026-09-04 08:00:00"


def migrated(rows: Rows) -> None:
    add_column(rows, "outbox", token_selector=None)


ROWS = {
    "delivery_state": [
        {
            "id": 1,
            "paused_at": None,
            "pause_reason": None,
            "last_error": "timeout",
            "last_error_at": AT,
        },
    ],
    "outbox": [
        {
            "id": 2,
            "message_id": "<r2@istitutostanga.edu.it>",
            "ledger_id": None,
            "review_id": 1,
            "template": "link_adult",
            "recipient": "docente@straße.de",
            "envelope_from": "segreteria@istitutostanga.edu.it",
            "raw": b"queued mail",
            "status": "pending",
            "attempts": 0,
            "created_at": AT,
            "next_attempt_at": AT,
            "sent_at": None,
            "last_error": None,
            "recipient_key": "docente@strasse.de",
            "username": "T0001",
            "purpose": "adult",
            "token_selector": "s" * 32,
        },
    ],
}
