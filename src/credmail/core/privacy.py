"""Keyed tags that let logs correlate an address without containing it."""

from __future__ import annotations

import hashlib
import hmac
import secrets


class AddressTagger:
    """HMAC-SHA256 of an address under a key kept apart from the data (truncated, hex)."""

    def __init__(self, key: str | None) -> None:
        self._key = (key or secrets.token_hex(32)).encode()

    def __call__(self, address: str | None) -> str | None:
        if not address:
            return None
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:16]
