"""What a mail source raises that the inbox watcher handles specially.

The adapters raise subclasses (an IMAP folder error, an OAuth2 token failure); the watcher
catches these types, so it needs no adapter to tell them apart.
"""

from __future__ import annotations


class SignInError(Exception):
    """A failed token request. `permanent` ones need a person (see `fix`)."""

    def __init__(self, code: str, cause: str, fix: str, permanent: bool) -> None:
        super().__init__(f"OAuth2 sign-in failed ({code}): {cause}")
        self.code, self.cause, self.fix, self.permanent = code, cause, fix, permanent


class MissingFolder(Exception):
    """The watched folder does not exist: a configuration problem, not an outage."""

    folder: str
