"""0002: link tokens split into selector and verifier (the old table is dropped: its
links, an hour to a day long, are gone with it), the circuit breaker, the outbox's
recipient key, username and purpose."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0002"
AT = "2026-09-02 08:00:00"
LATER = "2026-09-02 09:00:00"


def migrated(rows: Rows) -> None:
    rows["link_tokens"] = []  # dropped and made again by design
    add_column(rows, "outbox", recipient_key=None, username=None, purpose=None)


ROWS = {
    "circuit_breaker": [{"id": 1, "tripped_at": AT, "reset_at": LATER, "reason": "burst"}],
    "link_tokens": [
        {
            "id": 2,
            "selector": "s" * 32,
            "token_hash": "b" * 64,
            "username": "T0001",
            "purpose": "adult",
            "address": "docente@straße.de",
            "address_key": "docente@strasse.de",
            "state_hash": "c" * 64,
            "created_at": AT,
            "expires_at": LATER,
            "used_at": None,
            "revoked_at": None,
        },
        {
            "id": 3,
            "selector": "t" * 32,
            "token_hash": "d" * 64,
            "username": "S0001",
            "purpose": "student_first_access",
            "address": "Anna.Rossi@example.org",
            "address_key": "anna.rossi@example.org",
            "state_hash": "e" * 64,
            "created_at": AT,
            "expires_at": LATER,
            "used_at": LATER,
            "revoked_at": None,
        },
    ],
}
