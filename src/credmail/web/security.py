"""What every page gets: security headers, the real client address behind a trusted
proxy, CSRF tokens for forms, and an access log that never shows a token.

Pure ASGI middleware (no request bodies are read here), so they work for the reset page
and the console alike.
"""

from __future__ import annotations

import hashlib
import hmac
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

from credmail.core.networks import (
    DEFAULT_IPV6_PREFIX,
    is_trusted,
    limit_key,
    parse_address,
    trusted_networks,
)

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


FORWARDING_HEADERS = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded")
CLIENT_KEY = "credmail.client_key"  # the scope entry client_address reads


class ProxyHeaders:
    """Believe X-Forwarded-For/-Proto only from `trusted` peers: X-Forwarded-For is read
    right to left, skipping trusted hops, and the first other address is the client (the
    left part is whatever the client wrote). From any other peer the headers are ignored
    (a client cannot pick its own rate-limit key); the first such request in this process
    logs one warning, since behind a proxy missing from `web.trusted_proxies` every family
    shares the proxy's address. Each request's limit key goes in the scope."""

    def __init__(
        self, app: ASGIApp, trusted: Iterable[str], ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    ) -> None:
        self.app = app
        self.trusted = trusted_networks(trusted)
        self.ipv6_prefix = ipv6_prefix
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            peer = scope.get("client")
            headers = _headers(scope)
            if peer and is_trusted(parse_address(peer[0]), self.trusted):
                self._apply(scope, headers)
            elif any(name in headers for name in FORWARDING_HEADERS):
                self._warn_once(peer[0] if peer else None)
            client = scope.get("client")
            scope[CLIENT_KEY] = limit_key(client[0] if client else "unknown", self.ipv6_prefix)
        await self.app(scope, receive, send)

    def _apply(self, scope: MutableMapping[str, Any], headers: dict[str, str]) -> None:
        hops = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        for hop in reversed(hops):
            address = parse_address(hop)
            if not is_trusted(address, self.trusted):
                if address is not None:  # else a proxy wrote nonsense: keep the peer
                    scope["client"] = (str(address), 0)
                break
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto

    def _warn_once(self, peer: str | None) -> None:
        if self.warned:
            return
        self.warned = True
        address = parse_address(peer or "")
        shown = str(address) if address is not None and address.is_private else None
        log.warning(
            "web.forwarded_headers_ignored",
            peer=shown,  # a proxy's address; a public one could be a family's: not logged
            fix="if a reverse proxy sends them, list it in web.trusted_proxies (README)",
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def client_address(request: Request) -> str:
    """The client's key for the limits and the sign-in lockout: its address (the one a
    trusted proxy named), or its IPv6 network (web.ipv6_prefix)."""
    key = request.scope.get(CLIENT_KEY)
    if isinstance(key, str):
        return key
    return limit_key(request.client.host if request.client else "unknown")


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
SECURE_CSRF_COOKIE = "__Host-" + CSRF_COOKIE
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
    the page (scope) it was served on. No server-side session is needed.

    `key` is the school's (web.secret_key_file), so every `credmail web` process accepts
    the others' forms; without one it is this process's own. Over HTTPS the cookie is
    `__Host-credmail_csrf` (Secure, Path=/, no Domain): a sibling subdomain cannot set it,
    so it cannot plant a nonce it holds a form for (login CSRF by cookie tossing).
    Over plain HTTP (a test, a proxy not in web.trusted_proxies) it is `credmail_csrf`
    under the page's path."""

    def __init__(self, key: bytes | None = None, cookie_path: str = "/") -> None:
        self.key = key or secrets.token_bytes(32)
        self.cookie_path = cookie_path or "/"

    def _sign(self, nonce: str, scope: str) -> str:
        message = f"{nonce}|{scope}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _cookie(request: Request) -> str:
        return SECURE_CSRF_COOKIE if request.url.scheme == "https" else CSRF_COOKIE

    def issue(self, request: Request, scope: str) -> CsrfToken:
        nonce = request.cookies.get(self._cookie(request), "")
        new = not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", nonce)
        if new:
            nonce = secrets.token_urlsafe(32)
        return CsrfToken(self._sign(nonce, scope), nonce, new)

    def attach(self, response: Response, token: CsrfToken, request: Request) -> None:
        if token.new:
            secure = request.url.scheme == "https"
            response.set_cookie(
                self._cookie(request),
                token.nonce,
                path="/" if secure else self.cookie_path,
                secure=secure,
                httponly=True,
                samesite="strict",
            )

    def valid(self, request: Request, submitted: str | None, scope: str) -> bool:
        nonce = request.cookies.get(self._cookie(request))
        if not nonce or not submitted:
            return False
        return hmac.compare_digest(self._sign(nonce, scope), submitted)
