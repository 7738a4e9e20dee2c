"""0006_13a: the reset page: a link's claim, register tasks, the link audit."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0006_13a"
AT = "2026-09-06 08:00:00"


def migrated(rows: Rows) -> None:
    add_column(rows, "link_tokens", claimed_until=None)


ROWS = {
    "register_tasks": [
        {
            "id": 1,
            "selector": "s" * 32,
            "username": "T0001",
            "purpose": "adult",
            "role": "teacher",
            "first_name": "Jörg",
            "last_name": "Weiß",
            "address": "docente@straße.de",
            "address_key": "docente@strasse.de",
            "requested_at": AT,
            "confirmed_at": AT,
            "status": "open",
            "done_at": None,
            "done_by": None,
            "note": None,
        },
    ],
    "link_audit": [
        {
            "id": 1,
            "at": AT,
            "selector": "s" * 32,
            "username": "T0001",
            "event": "spent",
            "backend": "worklist",
            "result": "ok",
            "detail": None,
            "client": "203.0.113.7",
        },
    ],
}
