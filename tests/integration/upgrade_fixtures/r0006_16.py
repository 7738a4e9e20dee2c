"""0006_16: the September campaigns and their (address, student) pairs."""

import json

REVISION = "0006_16"
AT = "2026-09-08 08:00:00"

ROWS = {
    "campaigns": [
        {
            "id": 1,
            "name": "settembre-2026",
            "status": "running",
            "created_at": AT,
            "start_at": AT,
            "created_by": "maria",
            "finished_at": None,
        },
    ],
    "campaign_recipients": [
        {
            "id": 1,
            "campaign_id": 1,
            "address": "Anna.Rossi@example.org",
            "address_key": "anna.rossi@example.org",
            "student": "S0001",
            "guardians": json.dumps(["G0001"]),
            "state": "queued",
            "message_id": "<c1@istitutostanga.edu.it>",
            "created_at": AT,
            "queued_at": AT,
        },
    ],
}
