"""0004f: OAuth2 identities and the outbox's pacing pause."""

REVISION = "0004f"

ROWS = {
    "oauth_identities": [
        {
            "name": "mailbox",
            "refresh_token": None,
            "status": "ok",
            "cause": None,
            "fix": None,
            "updated_at": "2026-09-05 08:00:00",
        },
    ],
    "outbox_pause": [{"id": 1, "paused_until": "2026-09-05 09:00:00", "reason": "pacing"}],
}
