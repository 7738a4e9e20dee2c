"""0006_14: staff accounts, their sessions, sign-in failures, the audit log."""

REVISION = "0006_14"
AT = "2026-09-07 08:00:00"

ROWS = {
    "staff": [
        {
            "id": 1,
            "name": "maria",
            "role": "amministratore",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "totp_secret": None,
            "active": True,
            "created_at": AT,
            "password_changed_at": AT,
        },
    ],
    "staff_sessions": [
        {
            "id": 1,
            "token_hash": "f" * 64,
            "staff_name": "maria",
            "csrf": "g" * 64,
            "created_at": AT,
            "last_seen_at": AT,
        },
    ],
    "sign_in_failures": [
        {"key": "account:luca", "failures": 3, "last_failure_at": AT, "locked_until": None},
    ],
    "audit_log": [
        {
            "id": 1,
            "at": AT,
            "actor": "maria",
            "source": "web",
            "action": "review.discard",
            "item": "1",
            "detail": "spam",
        },
    ],
}
