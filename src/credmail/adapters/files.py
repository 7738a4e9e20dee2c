"""A sender that writes each reply as an .eml file (the demo, and dry runs)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from credmail.service.ports import OutgoingMail


class EmlConnection:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def start(self, mail: OutgoingMail) -> None:
        return None

    async def finish(self, mail: OutgoingMail) -> None:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", mail.message_id.strip("<>"))
        (self.directory / f"{name}.eml").write_bytes(mail.raw)

    async def reset(self) -> None:
        return None


class EmlFileSender:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @asynccontextmanager
    async def connect(self, keep_open: bool = False) -> AsyncIterator[EmlConnection]:
        self.directory.mkdir(parents=True, exist_ok=True)
        yield EmlConnection(self.directory)

    async def close(self) -> None:
        return None
