"""SMTP delivery with aiosmtplib; sorts failures into temporary and permanent."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib

from credmail.adapters.oauth import SignInError, TokenSource
from credmail.core.addresses import wire_address
from credmail.service.ports import OutgoingMail, SendError

# aiosmtplib's "... extension not supported ..." reworded (its "Try connecting via TLS" misleads)
_CONFIG_PROBLEMS = {
    "AUTH extension": (
        "the server offers no AUTH but smtp.username is set; remove smtp.username"
        " or use a server that offers AUTH"
    ),
    "STARTTLS extension": "the server does not offer STARTTLS; check smtp.security and smtp.port",
}


def _classify(exc: Exception) -> SendError:
    """Temporary, permanent, or a configuration problem (retrying cannot help any mail)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or (
        isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 530
    ):
        return SendError(f"authentication refused: {exc}", permanent=False, config=True)
    if not isinstance(exc, aiosmtplib.SMTPResponseException):
        for problem, advice in _CONFIG_PROBLEMS.items():
            if problem in str(exc):
                return SendError(advice, permanent=False, config=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        permanent = bool(codes) and all(500 <= code < 600 for code in codes)
        return SendError(f"recipient refused ({', '.join(map(str, codes))})", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        permanent = 500 <= exc.code < 600
        return SendError(f"{exc.code} {exc.message}", permanent=permanent)
    return SendError(f"{type(exc).__name__}: {exc}", permanent=False)


class SmtpConnection:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client

    async def start(self, mail: OutgoingMail) -> None:
        try:
            if self.client.is_ehlo_or_helo_needed:  # the extensions are known after EHLO
                await self.client.ehlo()
            # an 8bit body is declared where the server takes it (RFC 6152)
            eight_bit = not mail.raw.isascii() and self.client.supports_extension("8bitmime")
            options = ["BODY=8BITMIME"] if eight_bit else []
            await self.client.mail(mail.envelope_from, options=options)
            await self.client.rcpt(wire_address(mail.recipient))  # an IDN domain in A-labels
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc

    async def finish(self, mail: OutgoingMail) -> None:
        try:
            await self.client.data(mail.raw)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc

    async def reset(self) -> None:
        if self.client.is_connected:
            try:
                await self.client.rset()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()


@dataclass(frozen=True)
class _Kept:
    client: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    since: float  # time.monotonic() of its last use


class SmtpSender:
    """One authenticated connection per drain, TLS verified unless security = none; with
    `keep_seconds` and a drain that asks for it (`keep_open`: the daemon's outbox worker,
    which keeps one event loop), the connection stays open for the next drain that comes
    within that time on the same loop: a reply then skips the TCP and TLS handshakes,
    EHLO and AUTH, several round trips to a remote server. A kept connection is checked
    with NOOP before it is used; one the server closed while it waited is replaced, never
    counted against a mail."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str = "",
        password: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 30,
        tokens: TokenSource | None = None,
        keep_seconds: float = 0,
    ) -> None:
        self.tokens = tokens
        self.keep_seconds = keep_seconds
        self._kept: _Kept | None = None
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.ca_file, self.timeout = ca_file, timeout

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        """Built once: loading the CA store costs more than a whole delivery."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _client(self) -> aiosmtplib.SMTP:
        sign_in: dict[str, Any] = {"username": self.username or None}
        if self.tokens is not None:
            sign_in = {"username": self.username, "oauth_token_generator": self.tokens.access_token}
        elif self.username:
            sign_in["password"] = self.password
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self._tls_context if self.security != "none" else None,
            timeout=self.timeout,
            **sign_in,
        )

    @asynccontextmanager
    async def connect(self, keep_open: bool = False) -> AsyncIterator[SmtpConnection]:
        client = await self._reuse() or await self._open()
        try:
            yield SmtpConnection(client)
        except BaseException:
            await _quit(client)  # a connection that failed is not kept
            raise
        if keep_open and self.keep_seconds > 0 and client.is_connected:
            self._kept = _Kept(client, asyncio.get_running_loop(), time.monotonic())
        else:
            await _quit(client)

    async def close(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None and kept.loop is asyncio.get_running_loop():
            await _quit(kept.client)

    async def _reuse(self) -> aiosmtplib.SMTP | None:
        """The kept connection if it is on this loop, fresh and still answers."""
        kept, self._kept = self._kept, None
        if kept is None or kept.loop is not asyncio.get_running_loop():
            return None  # another loop's connection died with it
        if time.monotonic() - kept.since > self.keep_seconds or not kept.client.is_connected:
            await _quit(kept.client)
            return None
        try:
            await kept.client.noop()
        except (aiosmtplib.SMTPException, OSError):
            kept.client.close()
            return None
        return kept.client

    async def _open(self) -> aiosmtplib.SMTP:
        client = self._client()
        try:
            await client.connect()
        except SignInError as exc:
            raise SendError(str(exc), permanent=False) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            if self.tokens is None:
                raise _classify(exc) from exc
            self.tokens.reject_current()  # the next drain signs in with a new token
            raise SendError(f"{exc.code} sign-in refused", permanent=False) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc
        return client


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
