"""Which failures are the world's fault (retry later) rather than the message's."""

from __future__ import annotations

import imaplib
import socket
import ssl

from imapclient.exceptions import IMAPClientAbortError, LoginError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

_TRANSIENT = (
    OperationalError,
    InterfaceError,
    imaplib.IMAP4.abort,
    IMAPClientAbortError,
    socket.timeout,
    ConnectionError,
    ssl.SSLError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """A lost connection or a busy database: nothing is wrong with the message."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT) or (isinstance(exc, OSError) and exc.errno is not None)


def is_login_failure(exc: BaseException) -> bool:
    """The mailbox refused the credentials: retrying soon only locks the account."""
    return isinstance(exc, LoginError)
