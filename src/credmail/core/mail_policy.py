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
import sys
from email.headerregistry import (
    BaseHeader,
    HeaderRegistry,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from functools import lru_cache
from typing import Any, cast

MAX_CACHED_NAMES = 512
MAX_CACHED_HEADERS = 256
MAX_CACHED_VALUE = 1024  # longer values are parsed at every read, as the stock policy does
ID_FIELDS = ("message-id", "in-reply-to", "references")
LIST_PREFIX = "list-"  # List-Id, List-Unsubscribe, ... (RFC 2919, RFC 2369)


class _Verbatim:
    """Folds the value at its own whitespace only, never with encoded-words. A value that
    is not ASCII (where the policy is not utf8) is left to the stock folding."""

    name: str

    def fold(self, *, policy: email.policy.EmailPolicy) -> str:
        words = str(self).split()
        if not words or not (policy.utf8 or str(self).isascii()):
            return super().fold(policy=policy)  # type: ignore[misc, no-any-return]
        width = policy.max_line_length or sys.maxsize
        lines = [f"{self.name}: {words[0]}"]
        for word in words[1:]:
            if len(lines[-1]) + 1 + len(word) <= width:
                lines[-1] += f" {word}"
            else:
                lines.append(f" {word}")
        return policy.linesep.join(lines) + policy.linesep


class IdsHeader(_Verbatim, UniqueUnstructuredHeader):
    """Message-ID, In-Reply-To, References: at most one each; read as written."""


class ListHeader(_Verbatim, UnstructuredHeader):
    """A List-* field: angle-bracketed ids and URIs."""


class _HeaderClasses(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}
        for name in ID_FIELDS:
            self.map_to_type(name, cast(type[BaseHeader], IdsHeader))
        self.map_to_type(LIST_PREFIX, cast(type[BaseHeader], ListHeader))

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = super().__getitem__(LIST_PREFIX if key.startswith(LIST_PREFIX) else name)
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
