"""0011: the digest's slots and the alerts' last-told states (new tables)."""

REVISION = "0011_notify"

ROWS = {
    "notifications": [
        {
            "id": 1,
            "kind": "digest",
            "slot": "2026-12-08 07:45",
            "created_at": "2026-12-08 06:45:00",
            "mails": 2,
        },
        {
            "id": 2,
            "kind": "alert",
            "slot": "breaker#1",
            "created_at": "2026-12-08 09:00:00",
            "mails": 1,
        },
    ],
    "alert_states": [
        {"name": "breaker", "announced": True, "alerted_at": "2026-12-08 09:00:00", "mails": 1},
        {"name": "sign_in", "announced": False, "alerted_at": None, "mails": 0},
    ],
}
