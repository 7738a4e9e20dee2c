"""0001: the initial schema: the directory, the ledger, the review queue, the outbox, the
old link tokens, the checkpoints."""

import json

REVISION = "0001"
AT = "2026-09-01 08:00:00"
LATER = "2026-09-01 09:00:00"
RAW = (
    b"From: ignoto@example.org\r\nTo: segreteria@istitutostanga.edu.it\r\n"
    b"Subject: Richiesta credenziali\r\nMessage-ID: <b@example.org>\r\n\r\nBuongiorno\r\n"
)

ROWS = {
    "people": [
        {
            "id": 1,
            "username": "G0001",
            "role": "guardian",
            "first_name": "Anna",
            "last_name": "Rossi",
            "birth_date": None,
            "class_name": None,
        },
        {
            "id": 2,
            "username": "S0001",
            "role": "student",
            "first_name": "Luca",
            "last_name": "Rossi",
            "birth_date": "2012-03-04",
            "class_name": "1A",
        },
        {
            "id": 3,
            "username": "T0001",
            "role": "teacher",
            "first_name": "Jörg",
            "last_name": "Weiß",
            "birth_date": None,
            "class_name": None,
        },
    ],
    "person_emails": [
        {
            "id": 1,
            "person_id": 1,
            "position": 0,
            "address": "Anna.Rossi@example.org",
            "address_key": "anna.rossi@example.org",
        },
        # keyed under IDNA 2003 (ß -> ss); 0007 rewrites it in UTS 46 form
        {
            "id": 2,
            "person_id": 3,
            "position": 0,
            "address": "docente@straße.de",
            "address_key": "docente@strasse.de",
        },
        {
            "id": 3,
            "person_id": 3,
            "position": 1,
            "address": "jweiss@example.org",
            "address_key": "jweiss@example.org",
        },
    ],
    "guardianships": [{"guardian_id": 1, "student_id": 2}],
    "checkpoints": [{"folder": "INBOX", "validity": 7, "last_uid": 42, "synced_at": AT}],
    "ledger": [
        {
            "id": 1,
            "folder": "INBOX",
            "validity": 7,
            "source_key": "41",
            "message_id": "<a@example.org>",
            "handled_at": AT,
            "outcome": "answered",
            "reasons": json.dumps(["adult"]),
            "target_folder": "Credenziali/Evase",
            "moved_at": AT,
            "error": None,
        },
        {
            "id": 2,
            "folder": "INBOX",
            "validity": 7,
            "source_key": "42",
            "message_id": "<b@example.org>",
            "handled_at": AT,
            "outcome": "review",
            "reasons": json.dumps(["unknown_sender"]),
            "target_folder": "Credenziali/Revisione",
            "moved_at": None,
            "error": None,
        },
    ],
    "review_items": [
        {
            "id": 1,
            "ledger_id": 2,
            "created_at": AT,
            "status": "pending",
            "kind": "request",
            "sender": "ignoto@example.org",
            "message_id": "<b@example.org>",
            "subject": "Richiesta credenziali",
            "reasons": json.dumps(["unknown_sender"]),
            "raw": RAW,
            "decided_by": None,
            "decided_at": None,
            "decision": None,
            "note": None,
            "sent_summary": None,
        },
    ],
    "outbox": [
        {
            "id": 1,
            "message_id": "<r1@istitutostanga.edu.it>",
            "ledger_id": 1,
            "review_id": None,
            "template": "link_adult",
            "recipient": "Anna.Rossi@example.org",
            "envelope_from": "segreteria@istitutostanga.edu.it",
            "raw": None,
            "status": "sent",
            "attempts": 1,
            "created_at": AT,
            "next_attempt_at": AT,
            "sent_at": LATER,
            "last_error": None,
        },
    ],
    "link_tokens": [
        {
            "id": 1,
            "token_hash": "a" * 64,
            "username": "G0001",
            "purpose": "adult",
            "address": "anna.rossi@example.org",
            "created_at": AT,
            "expires_at": LATER,
            "used_at": None,
            "revoked_at": None,
        },
    ],
}
