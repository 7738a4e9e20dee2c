"""Secrets the database keeps, encrypted with a Fernet key kept outside it, as the OAuth2
refresh token is (adapters/db/oauth_store.py): the console's TOTP secrets. A database
backup then carries no second factor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from credmail.adapters.db.oauth_store import TokenKeyError, load_key
from credmail.service.ports import SealError

if TYPE_CHECKING:  # cryptography is loaded only where a key is used
    from cryptography.fernet import Fernet


class KeyFileSeal:
    """The key is read from `path` on first use; sealing creates it (mode 0600) when it
    does not exist yet, opening never does. `setting` names the path in every error."""

    def __init__(self, path: Path | None, setting: str) -> None:
        self.path, self.setting = path, setting
        self._key: Fernet | None = None

    def ready(self) -> bool:
        return self._key is not None or (self.path is not None and self.path.exists())

    def seal(self, secret: str) -> str:
        return self._fernet(create=True).encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet(create=False).decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealError(f"{self.setting}: the key does not open a stored secret") from None

    def _fernet(self, create: bool) -> Fernet:
        if self._key is not None:
            return self._key
        if self.path is None:
            raise SealError(f"{self.setting} is not set: a key file is needed (created if missing)")
        try:
            key = load_key(self.path, create, self.setting)
        except TokenKeyError as exc:
            raise SealError(str(exc)) from None
        if key is None:
            raise SealError(f"{self.setting}: {self.path} does not exist")
        self._key = key
        return key
