"""0009: staff: a longer sealed TOTP secret, the last TOTP step used, and whether the
password was set stripped of spaces (every account made before: yes)."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0009_staff_hardening"
AT = "2026-09-09 08:00:00"


def migrated(rows: Rows) -> None:
    add_column(rows, "staff", totp_last_step=None, password_trimmed=True)


ROWS = {
    "staff": [
        {
            "id": 2,
            "name": "luca",
            "role": "operatore",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdDI$aGFzaDI",
            "totp_secret": "sealed:" + "x" * 200,
            "active": False,
            "created_at": AT,
            "password_changed_at": AT,
            "totp_last_step": 59_000_000,
            "password_trimmed": False,
        },
    ],
}
