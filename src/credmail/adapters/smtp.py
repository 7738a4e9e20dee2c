"""SMTP delivery with aiosmtplib; sorts failures into temporary and permanent."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib

from credmail.adapters.oauth import SignInError, TokenSource
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
            await self.client.mail(mail.envelope_from)
            await self.client.rcpt(mail.recipient)
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


class SmtpSender:
    """Opens one authenticated connection per drain; TLS verified unless security = none."""

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
    ) -> None:
        self.tokens = tokens
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
    async def connect(self) -> AsyncIterator[SmtpConnection]:
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
        try:
            yield SmtpConnection(client)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
