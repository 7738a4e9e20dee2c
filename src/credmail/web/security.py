"""What every page gets: security headers, the real client address behind a trusted
proxy, CSRF tokens for forms, and an access log that never shows a token.

Pure ASGI middleware (no request bodies are read here), so they work for the reset page
and the console alike.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("credmail.web")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; style-src 'self'",
    ),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-robots-tag", b"noindex, nofollow"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds the headers above to every HTTP response (replacing any the route set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in names]
                message["headers"] = headers + list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _is_trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class ProxyHeaders:
    """Believe X-Forwarded-For/-Proto/-Host only from `trusted` peers: the client is the
    right-most address in X-Forwarded-For that is not itself a trusted proxy. From any
    other peer the headers are ignored (a client cannot pick its own rate-limit key)."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted:
            peer = scope.get("client")
            if peer and _is_trusted(peer[0], self.trusted):
                scope = dict(scope)
                self._apply(scope, _headers(scope))
        await self.app(scope, receive, send)

    def _apply(self, scope: MutableMapping[str, Any], headers: dict[str, str]) -> None:
        forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        for address in reversed(forwarded):
            if not _is_trusted(address, self.trusted):
                scope["client"] = (address, 0)
                break
        else:
            if forwarded:
                scope["client"] = (forwarded[0], 0)
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def client_address(request: Request) -> str:
    """The rate-limit key: the peer, or the client a trusted proxy named."""
    return request.client.host if request.client else "unknown"


# Anything after these path segments is a secret (a reset token) and never logged.
_SECRET_PATH = re.compile(r"/(reset)/[^/?#]+")


def redact_path(path: str) -> str:
    return _SECRET_PATH.sub(r"/\1/…", path)


class AccessLog:
    """One structured line per request, path redacted, no query string, no client address
    (uvicorn's own access log is off: it would print the token)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            log.info(
                "web.request",
                method=scope["method"],
                path=redact_path(scope["path"]),
                status=status,
                ms=round((time.monotonic() - started) * 1000),
            )


class Errors:
    """An unexpected failure (the database gone, a bug) answers a page saying to try again
    later, and logs one line with the exception's type only: its message or traceback could
    quote the request path or SQL parameters. Nothing reaches uvicorn's error log."""

    def __init__(self, app: ASGIApp, page: Callable[[Scope], Response]) -> None:
        self.app, self.page = app, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            log.error("web.error", error=type(exc).__name__, path=redact_path(scope["path"]))
            if not started:
                await self.page(scope)(scope, receive, send)


CSRF_COOKIE = "credmail_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class CsrfToken:
    """The hidden form value, and the cookie nonce it is bound to (set if new)."""

    value: str
    nonce: str
    new: bool


class Csrf:
    """Double-submit, signed: a random nonce in a SameSite=Strict, HttpOnly cookie, and a
    form field HMAC(key, nonce, scope). A form is good only with its own cookie and for
    the page (scope) it was served on. No server-side session is needed. The key is per
    process unless given; a restart only asks the family to reload the page."""

    def __init__(self, key: bytes | None = None, cookie_path: str = "/") -> None:
        self.key = key or secrets.token_bytes(32)
        self.cookie_path = cookie_path or "/"

    def _sign(self, nonce: str, scope: str) -> str:
        message = f"{nonce}|{scope}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def issue(self, request: Request, scope: str) -> CsrfToken:
        nonce = request.cookies.get(CSRF_COOKIE, "")
        new = not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", nonce)
        if new:
            nonce = secrets.token_urlsafe(32)
        return CsrfToken(self._sign(nonce, scope), nonce, new)

    def attach(self, response: Response, token: CsrfToken, request: Request) -> None:
        if token.new:
            response.set_cookie(
                CSRF_COOKIE,
                token.nonce,
                path=self.cookie_path,
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )

    def valid(self, request: Request, submitted: str | None, scope: str) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE)
        if not nonce or not submitted:
            return False
        return hmac.compare_digest(self._sign(nonce, scope), submitted)
