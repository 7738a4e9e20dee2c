"""The email package's modern policy, with each header class built once and each header
parsed once.

`email.policy.default` parses every header through a registry that builds a new class
(`type(...)`) for each header it parses: on a backlog that was about 5 % of credmail's
time. The classes are the same for the same header name, so this registry keeps the one
it built per name (up to a bound: a message can invent any number of names).

It also parses a header again at every read: `get_content_type()` alone reads
Content-Type a dozen times while one message's body is found, and a Content-Type parse
costs tens of microseconds. The parsed header objects are immutable (a `str` with its
parse tree, defects and parameters), so a read of the same name and raw value returns
the object parsed before, from a bounded cache shared by every message. Everything else
is `email.policy.default`.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry
from functools import lru_cache
from typing import Any

MAX_CACHED_NAMES = 512
MAX_CACHED_HEADERS = 256
MAX_CACHED_VALUE = 1024  # longer values are parsed at every read, as the stock policy does


class _HeaderClasses(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = super().__getitem__(name)
            if len(self._built) < MAX_CACHED_NAMES:
                self._built[key] = built
        return built


class _ParseOncePolicy(email.policy.EmailPolicy):
    """`header_fetch_parse` answered from a cache for short raw values."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > MAX_CACHED_VALUE:
            return super().header_fetch_parse(name, value)
        return _fetched(self, name, value)


@lru_cache(maxsize=MAX_CACHED_HEADERS)
def _fetched(policy: email.policy.EmailPolicy, name: str, value: str) -> Any:
    return email.policy.EmailPolicy.header_fetch_parse(policy, name, value)


POLICY = _ParseOncePolicy(header_factory=_HeaderClasses())
