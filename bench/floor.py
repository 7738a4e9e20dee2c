"""The floor: the least work any implementation must do, with the same libraries.

Fetch every message with BODY.PEEK[], MOVE the requests, send one short reply per request
over a single SMTP connection. No parsing, no database, no decisions.
Usage: python bench/floor.py IMAP_PORT SMTP_PORT USER PASSWORD
"""

from __future__ import annotations

import asyncio
import sys
from email.message import EmailMessage

import aiosmtplib
from imapclient import IMAPClient

BATCH = 200


def fetch_and_move(port: int, user: str, password: str) -> list[int]:
    client = IMAPClient("127.0.0.1", port=port, ssl=False)
    client.login(user, password)
    if not client.folder_exists("Evase"):
        client.create_folder("Evase")
    client.select_folder("INBOX")
    uids = sorted(client.search(["ALL"]))
    requests: list[int] = []
    for start in range(0, len(uids), BATCH):
        chunk = uids[start : start + BATCH]
        found = [
            uid
            for uid, data in client.fetch(chunk, [b"BODY.PEEK[]"]).items()
            if _is_request(data[b"BODY[]"])
        ]
        if found:
            client.move(found, "Evase")  # one command per batch: the cheapest way
        requests += found
    client.logout()
    return requests


def _is_request(raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    return b"subject: richiesta credenziali" in head or b"subject: re: richiesta" in head


async def reply(port: int, count: int) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
        for number in range(count):
            msg = EmailMessage()
            msg["From"] = "segreteria@istitutostanga.edu.it"
            msg["To"] = f"destinatario{number}@example.org"
            msg["Subject"] = "Credenziali"
            msg.set_content("Ecco il collegamento.")
            await smtp.send_message(msg)


def main() -> None:
    imap_port, smtp_port, user, password = sys.argv[1:5]
    requests = fetch_and_move(int(imap_port), user, password)
    asyncio.run(reply(int(smtp_port), len(requests)))
    print(len(requests))


if __name__ == "__main__":
    main()
