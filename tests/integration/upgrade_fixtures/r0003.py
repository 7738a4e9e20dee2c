"""0003: attempts counted per message, across restarts."""

REVISION = "0003"

ROWS = {
    "attempts": [
        {
            "id": 1,
            "folder": "INBOX",
            "validity": 7,
            "source_key": "43",
            "count": 2,
            "updated_at": "2026-09-03 08:00:00",
        },
    ],
}
