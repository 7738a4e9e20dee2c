"""The `webhook` link backend: a signed POST to the school's own system.

Body: JSON {request_id, username, purpose, person{first_name, last_name, role},
confirmed_at}, compact and with sorted keys. Headers: `Idempotency-Key` (the request id,
the same on every attempt), `X-Credmail-Timestamp` (Unix seconds, a later one on each
attempt) and `X-Credmail-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared secret over
the bytes `f"{timestamp}.{body}"` (README: "Webhook signature" has a verifier).

Outcomes: 2xx is DONE. A 5xx, 429, a timeout or a connection error is retried up to
`retries` times with exponential backoff, then RETRY_LATER. Any other answer (3xx, 4xx)
is not retried (the same request would get the same answer) and is RETRY_LATER with
the status in the detail: the link stays usable while the school fixes its side.
`timeout` bounds each attempt as a whole, in wall-clock time. HTTP goes through `requests`
(which msal and google-auth bring anyway), one session per attempt and no hidden retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import structlog
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from credmail.config import WebhookSettings
from credmail.service.link_backends import BackendKind, SpendOutcome, SpendRequest, SpendResult

SIGNATURE_HEADER = "X-Credmail-Signature"
TIMESTAMP_HEADER = "X-Credmail-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "credmail-webhook/1"
RETRIED_STATUSES = frozenset({429})  # and every 5xx

log = structlog.get_logger("credmail.links.webhook")


def payload(request: SpendRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "username": request.username,
        "purpose": request.purpose,
        "person": {
            "first_name": request.first_name,
            "last_name": request.last_name,
            "role": request.role,
        },
        "confirmed_at": _iso_utc(request.confirmed_at),
    }


def encode_body(request: SpendRequest) -> bytes:
    return json.dumps(
        payload(request), ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode("utf-8")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 over b"{timestamp}.{body}">."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def _iso_utc(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WebhookBackend:
    kind = BackendKind.WEBHOOK
    needs_password = False

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 5,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        ca_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._secret = secret.encode("utf-8")
        self.timeout = timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.ca_file = ca_file
        self._verify: str | bool = str(ca_file) if ca_file is not None else True  # it alone
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"WebhookBackend(url={self.url!r}, retries={self.retries})"

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> WebhookBackend:
        """From the [webhook] section."""
        assert settings.secret is not None  # the settings read secret_file
        return cls(
            url=settings.url,
            secret=settings.secret,
            timeout=settings.timeout_seconds,
            retries=settings.retries,
            backoff_seconds=settings.retry_backoff_seconds,
            ca_file=settings.ca_file,
        )

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        return []  # no password on this page: the school's system takes it from here

    def spend(self, request: SpendRequest) -> SpendOutcome:
        body = encode_body(request)
        outcome = SpendOutcome(SpendResult.RETRY_LATER, detail="not attempted")
        attempts, stamp = 0, 0
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
            attempts += 1
            # a later second than the last attempt's: every attempt has its own
            # signature, so the receiver may refuse any signature it has seen
            stamp = max(int(self._clock()), stamp + 1)
            outcome, retry = self._bounded(request.request_id, body, str(stamp))
            if not retry:
                break
        (log.info if outcome.done else log.warning)(
            "webhook.spend",
            request_id=request.request_id,
            result=outcome.result.value,
            detail=outcome.detail,
            attempts=attempts,
        )
        return outcome

    def _session(self, adapter: _AbortableAdapter) -> requests.Session:
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        return session

    def _bounded(self, request_id: str, body: bytes, timestamp: str) -> tuple[SpendOutcome, bool]:
        """One attempt within `timeout` seconds of wall-clock time. requests bounds each phase
        (connect, every read) on its own, so a server dripping bytes could hold an attempt
        far longer than `web.claim_seconds` holds the link (a second press would then call
        the school's system while the first call still waits): past the deadline the
        attempt's connection is shut under it and the attempt counts as a timeout."""
        adapter = _AbortableAdapter()
        session = self._session(adapter)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credmail-webhook")
        future = pool.submit(self._attempt, session, request_id, body, timestamp)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            return _retry("timeout: no answer within timeout_seconds"), True
        finally:
            adapter.abort()  # ends a read still waiting in the worker
            session.close()
            pool.shutdown(wait=False)

    def _attempt(
        self, session: requests.Session, request_id: str, body: bytes, timestamp: str
    ) -> tuple[SpendOutcome, bool]:
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: request_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self._verify,  # per call: REQUESTS_CA_BUNDLE overrides a session's
            )
        except requests.Timeout as exc:
            return _retry(f"timeout: {type(exc).__name__}"), True
        except requests.RequestException as exc:  # refused, reset, DNS, TLS
            return _retry(f"connection error: {_failure_name(exc)}"), True
        status = response.status_code
        if 200 <= status < 300:
            return SpendOutcome(SpendResult.DONE, detail=f"webhook answered {status}"), False
        retried = status >= 500 or status in RETRIED_STATUSES
        return _retry(f"webhook answered {status}"), retried


def _failure_name(exc: requests.RequestException) -> str:
    """The detail's words for a failed connection, as they were with httpx: ConnectError when
    no connection was made (refused, DNS, TLS), else requests' own exception name."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(reason, NewConnectionError):
        return "ConnectError"
    return type(exc).__name__


class _AbortableAdapter(HTTPAdapter):
    """requests' adapter, remembering the connections it opens so that `abort` can shut one
    under a read still waiting (closing a session closes only its idle connections)."""

    def __init__(self) -> None:
        self.opened: list[HTTPConnection] = []
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _tracking(HTTPConnectionPool, self.opened),
            "https": _tracking(HTTPSConnectionPool, self.opened),
        }

    def abort(self) -> None:
        for connection in self.opened:
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


def _tracking(base: type[HTTPConnectionPool], opened: list[HTTPConnection]) -> Any:
    class Tracking(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> HTTPConnection:
            connection: HTTPConnection = super()._new_conn()
            opened.append(connection)
            return connection

    return Tracking


def _retry(detail: str) -> SpendOutcome:
    return SpendOutcome(SpendResult.RETRY_LATER, detail=detail)
