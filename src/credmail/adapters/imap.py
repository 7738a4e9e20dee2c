"""IMAP mail source on imapclient: UID commands, BODY.PEEK, IDLE, MOVE after commit.

The client is blocking and not thread safe: one connection, used from one thread.
"""

from __future__ import annotations

import imaplib
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from credmail.adapters.oauth import AccessToken, TokenSource
from credmail.core.values import MailRef
from credmail.service.ports import FolderState
from credmail.service.source_errors import MissingFolder

HEADER = b"BODY[HEADER]"
FULL = b"BODY[]"
SIZE = b"RFC822.SIZE"


class FolderMissing(imaplib.IMAP4.error, MissingFolder):
    """The watched folder does not exist: a configuration problem, not an outage."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"folder {folder!r} does not exist")
        self.folder = folder


class ImapSource:
    """Connects lazily on first use and again after `close()` (used after any error)."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        folder: str,
        target_folders: list[str],
        ca_file: Path | None = None,
        timeout: float = 60,
        use_idle: bool = True,
        idle_refresh_seconds: float = 240,
        tokens: TokenSource | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.folder, self.target_folders = folder, target_folders
        self.ca_file, self.timeout = ca_file, timeout
        self.use_idle, self.idle_refresh = use_idle, idle_refresh_seconds
        self._client: IMAPClient | None = None
        self._delimiter = "/"
        self._prefix = ""
        self._idle_since: float | None = None
        self._selected = False
        self._validity = 0
        self.tokens = tokens
        self._token: AccessToken | None = None
        self.log = structlog.get_logger("credmail.imap")

    # -- connection ---------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _conn(self) -> IMAPClient:
        if self._client is not None and self._token_due():
            self._renew_session()
        if self._client is None:
            self._client = self._connect()
        elif self._idle_since is not None:
            self._end_idle()
        return self._client

    def _sign_in(self) -> IMAPClient:
        token = self.tokens.token() if self.tokens is not None else None  # before dialling
        tls = self.security == "tls"
        client = IMAPClient(
            self.host,
            port=self.port,
            ssl=tls,
            ssl_context=self._context() if tls else None,
            timeout=self.timeout,
        )
        try:
            if self.security == "starttls":
                client.starttls(self._context())
            if token is None:
                client.login(self.username, self.password)
            else:
                self._oauth_login(client, token)
            self._learn_namespace(client)
        except Exception:
            _quietly_close(client)
            raise
        return client

    def _connect(self) -> IMAPClient:
        client = self._sign_in()
        try:
            self._ensure_folders(client)
        except Exception:
            _quietly_close(client)
            raise
        self._selected = False
        self.log.info("imap.connected", capabilities=len(client.capabilities()))
        return client

    def check(self, report: Callable[[str], None]) -> None:
        """Sign in and look, changing nothing (`credmail check-config --connect`)."""
        where = f"IMAP {self.host}:{self.port}"
        client = self._sign_in()
        try:
            report(f"{where}: signed in as {self.username}")
            if not client.folder_exists(self.folder):
                raise FolderMissing(self.folder)
            report(f"{where}: folder {self.folder} exists")
            exists = client.folder_exists
            missing = [f for f in self.target_folders if not exists(self.server_name(f))]
            if missing:
                report(f"{where}: will create on first run: {', '.join(missing)}")
        finally:
            _quietly_close(client)

    # -- OAuth2 sessions ------------------------------------------------------------

    def _oauth_login(self, client: IMAPClient, token: AccessToken) -> None:
        """XOAUTH2 (or OAUTHBEARER); a refused token is replaced once by a fresh one, and
        a fresh one refused means the mailbox itself says no (a permanent cause)."""
        assert self.tokens is not None
        try:
            _bearer_login(client, self.username, token.value)
        except LoginError:
            self.tokens.reject(token)
            token = self.tokens.token(fresh=True)
            try:
                _bearer_login(client, self.username, token.value)
            except LoginError:
                raise self.tokens.refused_fresh() from None
        self._token = token

    def _token_due(self) -> bool:
        return self._token is not None and self._token.fresh_for(time.time()) <= 0

    def _renew_session(self) -> None:
        """Reconnect with a new token before the old one expires (Exchange would end the
        session with BYE AccessTokenExpired); the selected folder is selected again."""
        selected, validity = self._selected, self._validity
        self.log.info("imap.token_renewal")
        self.close()
        self._client = self._connect()
        if selected and self.select().validity != validity:
            raise RuntimeError("UIDVALIDITY changed while renewing the session")

    def expired_session(self, exc: BaseException) -> bool:
        """Was `exc` the server ending a session whose token expired? (reconnect at once)"""
        if self.tokens is None:
            return False
        return "AccessTokenExpired" in str(exc) or (
            self._token is not None and self._token.expires_at <= time.time()
        )

    def _learn_namespace(self, client: IMAPClient) -> None:
        if not client.has_capability("NAMESPACE"):
            return
        personal = client.namespace().personal
        if personal:
            prefix, delimiter = personal[0]
            self._prefix = prefix or ""
            self._delimiter = delimiter or "/"

    def server_name(self, folder: str) -> str:
        """Config names use '/'; the server may use another delimiter and a prefix."""
        name = folder.replace("/", self._delimiter)
        if self._prefix and not name.startswith(self._prefix):
            name = self._prefix + name
        return name

    def _ensure_folders(self, client: IMAPClient) -> None:
        for folder in self.target_folders:
            name = self.server_name(folder)
            if not client.folder_exists(name):
                client.create_folder(name)
                client.subscribe_folder(name)
                self.log.info("imap.folder_created", folder=folder)

    def close(self) -> None:
        self._token = None
        if self._idle_since is not None:
            try:
                self._end_idle()
            except Exception:  # the connection may already be gone
                self._idle_since = None
        client, self._client = self._client, None
        self._idle_since, self._selected = None, False
        if client is not None:
            _quietly_close(client)

    # -- the MailSource port --------------------------------------------------------

    def select(self) -> FolderState:
        client = self._conn()
        try:
            info = client.select_folder(self.folder)
        except imaplib.IMAP4.abort:
            raise  # the connection is gone: nothing to ask
        except imaplib.IMAP4.error:
            if not client.folder_exists(self.folder):  # LIST: every server answers it
                raise FolderMissing(self.folder) from None
            raise
        _take_news(client)  # the counts SELECT reports are not news
        self._selected = True
        validity = self._validity = int(info[b"UIDVALIDITY"])
        uidnext = int(info.get(b"UIDNEXT") or self._max_uid(client) + 1)
        return FolderState(self.folder, validity, uidnext)

    def _max_uid(self, client: IMAPClient) -> int:
        uids = client.search(["ALL"])
        return max(uids) if uids else 0

    def scan(self, after_uid: int, limit: int) -> list[MailRef]:
        client = self._conn()
        uids = sorted(
            uid for uid in client.search(["UID", f"{after_uid + 1}:*"]) if uid > after_uid
        )
        if not uids:
            return []
        wanted = uids[:limit]
        data = client.fetch(wanted, [SIZE, b"BODY.PEEK[HEADER]"])
        return [
            MailRef(self.folder, self._validity, str(uid), int(data[uid][SIZE]), data[uid][HEADER])
            for uid in wanted
            if uid in data and HEADER in data[uid]
        ]

    def fetch_many(self, refs: Sequence[MailRef]) -> dict[str, bytes]:
        data = self._conn().fetch([int(ref.key) for ref in refs], [b"BODY.PEEK[]"])
        return {str(uid): item[FULL] for uid, item in data.items() if FULL in item}

    def move_many(self, refs: Sequence[MailRef], folder: str) -> None:
        if self.server_name(folder) == self.server_name(self.folder):
            raise ValueError(f"refusing to move into the watched folder {folder!r}")
        client = self._conn()
        uids, name = [int(ref.key) for ref in refs], self.server_name(folder)
        if client.has_capability("MOVE"):
            client.move(uids, name)
            return
        client.copy(uids, name)
        client.delete_messages(uids)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            # A plain EXPUNGE would also erase what the staff marked deleted: leave it flagged.
            self.log.warning("imap.no_uidplus", hint="copied and flagged \\Deleted, not expunged")

    def set_keyword(self, refs: Sequence[MailRef], keyword: str, on: bool) -> None:
        """STORE +FLAGS / -FLAGS (UID): the message stays where it is, unread if unread."""
        uids = [int(ref.key) for ref in refs]
        if not uids:
            return
        client = self._conn()
        if on:
            client.add_flags(uids, [keyword.encode("ascii")], silent=True)
        else:
            client.remove_flags(uids, [keyword.encode("ascii")], silent=True)

    def wait_for_mail(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when the server announced new mail."""
        if self._client is not None and self._token_due():
            self._renew_session()
            return True  # mail may have come while no session listened: sync
        if self._idle_since is None:
            client = self._conn()
            if not self._selected:
                self.select()
            if not (self.use_idle and client.has_capability("IDLE")):
                time.sleep(timeout)
                return False
            client.idle()
            self._idle_since = time.monotonic()
            if _take_news(client) or _buffered(client):  # it came while we were busy
                self._notified()
                self._end_idle()
                return True
        assert self._client is not None
        if _announces_mail(self._client.idle_check(timeout=timeout)):
            self._notified()
            self._end_idle()
            return True
        if time.monotonic() - self._idle_since > self.idle_refresh:
            return _announces_mail(self._end_idle())
        return False

    def _notified(self) -> None:
        """The moment the server's announcement reached us (debug: bench.run measures
        credmail's own share of the latency from here to the reply's DATA)."""
        self.log.debug("imap.new_mail", at=time.time())

    def _end_idle(self) -> list[Any]:
        """Leave IDLE; returns what the server said meanwhile (it may announce mail)."""
        self._idle_since = None
        if self._client is None:
            return []
        done = self._client.idle_done()
        return list(done[1]) if isinstance(done, tuple) and len(done) > 1 else []


def _bearer_login(client: IMAPClient, username: str, token: str) -> None:
    if not client.has_capability("AUTH=XOAUTH2") and client.has_capability("AUTH=OAUTHBEARER"):
        client.oauthbearer_login(username, token)
    else:
        client.oauth2_login(username, token)


def _take_news(client: IMAPClient) -> bool:
    """Did the server announce mail between commands? imaplib keeps such untagged
    EXISTS/RECENT responses aside (IDLE would never report them again): take them."""
    kept = client._imap.untagged_responses
    return bool(kept.pop("EXISTS", None)) | bool(kept.pop("RECENT", None))


def _buffered(client: IMAPClient) -> bool:
    """Is a server line already waiting in imaplib's read buffer? `idle()` reads only the
    continuation line; an EXISTS that arrived in the same packet stays buffered where
    `idle_check` (which polls the socket) never sees it: the silent IDLE hang."""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)


def _announces_mail(responses: list[Any]) -> bool:
    return any(
        isinstance(item, tuple) and len(item) > 1 and item[1] in (b"EXISTS", b"RECENT")
        for item in responses
    )


def _quietly_close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            return
