"""0013: the near misses (a new table), one open and one treated."""

REVISION = "0013_near_miss"

_COMMON = {
    "folder": "INBOX",
    "validity": 1,
    "language": "it",
    "keyword_set": True,
}

ROWS = {
    "near_misses": [
        _COMMON
        | {
            "id": 1,
            "ledger_id": 1,
            "source_key": "41",
            "created_at": "2026-12-08 08:00:00",
            "sender": "mario.rossi@example.org",
            "sender_key": "mario.rossi@example.org",
            "message_id": "<nm1@example.org>",
            "subject": "Password dimenticata registro elettronico",
            "excerpt": "Non riesco più a entrare.",
            "rule": "credentials_in_subject",
            "guided": False,
            "status": "open",
            "keyword_wanted": True,
            "raw": b"Subject: Password dimenticata\r\n\r\nNon riesco.\r\n",
            "decided_by": None,
            "decided_at": None,
            "decision": None,
            "outcome": None,
        },
        _COMMON
        | {
            "id": 2,
            "ledger_id": None,
            "source_key": "42",
            "created_at": "2026-12-08 08:05:00",
            "sender": None,
            "sender_key": None,
            "message_id": None,
            "subject": "",
            "excerpt": "credenziali per mia figlia",
            "rule": "credentials_asked",
            "guided": True,
            "status": "treated",
            "keyword_wanted": False,
            "raw": None,
            "decided_by": "olga (console)",
            "decided_at": "2026-12-08 09:00:00",
            "decision": "student",
            "outcome": "review",
        },
    ],
}
