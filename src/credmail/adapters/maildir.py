"""A local Maildir as a mail source (local-delivery setups and the demo).

Maildir has no UIDs: every scan lists the messages in new/ and cur/, and the ledger
tells handled ones apart. Handled requests are renamed into Maildir++ subfolders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from credmail.core.values import MailRef
from credmail.service.ports import FolderState

INBOX = "INBOX"


class MaildirSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def select(self) -> FolderState:
        for sub in ("new", "cur", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return FolderState(INBOX, 0, 0, ordered=False)

    def scan(self, after_uid: int, limit: int) -> list[MailRef]:
        return [self._ref(path) for path in self._files()]

    def _files(self) -> list[Path]:
        files = [p for sub in ("new", "cur") for p in (self.root / sub).iterdir() if p.is_file()]
        return sorted(files, key=lambda p: p.name)

    def _ref(self, path: Path) -> MailRef:
        with path.open("rb") as handle:
            header = _read_header(handle.read(256 * 1024))
        return MailRef(INBOX, 0, _key(path.name), path.stat().st_size, header)

    def _paths(self) -> dict[str, Path]:
        return {_key(path.name): path for path in self._files()}

    def fetch_many(self, refs: Sequence[MailRef]) -> dict[str, bytes]:
        paths = self._paths()
        return {ref.key: paths[ref.key].read_bytes() for ref in refs if ref.key in paths}

    def set_keyword(self, refs: Sequence[MailRef], keyword: str, on: bool) -> None:
        """Maildir has no portable keywords: the console and the ledger hold the mark."""

    def move_many(self, refs: Sequence[MailRef], folder: str) -> None:
        paths = self._paths()
        target = self.folder_path(folder)
        for sub in ("new", "cur", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        for ref in refs:
            source = paths.get(ref.key)
            if source is not None:
                os.replace(source, target / source.parent.name / source.name)

    def folder_path(self, folder: str) -> Path:
        return self.root / ("." + folder.replace("/", "."))

    def wait_for_mail(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False

    def close(self) -> None:
        return None


def _key(filename: str) -> str:
    return filename.split(":", 1)[0]


def _read_header(data: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = data.find(separator)
        if end != -1:
            return data[: end + len(separator)]
    return data
