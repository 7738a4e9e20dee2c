"""The email package's modern policy, with each header class built once.

`email.policy.default` parses every header through a registry that builds a new class
(`type(...)`) for each header it parses: on a backlog that was about 5 % of credmail's
time. The classes are the same for the same header name, so this registry keeps the one
it built per name (up to a bound: a message can invent any number of names). Everything
else is `email.policy.default`.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry

MAX_CACHED_NAMES = 512


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


POLICY = email.policy.default.clone(header_factory=_HeaderClasses())
