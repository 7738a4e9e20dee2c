"""A real HTTP server on loopback that plays the school's webhook receiver.

It verifies each request the way the README tells a school to (`verify`), records
it, and answers from a script: a status code, or HANG to hold the request until the
test ends (the client's timeout fires first). Runs in a thread; stopped by the fixture.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SECRET = "webhook-test-secret-0123456789abcdef"
HANG = -1
TOLERANCE = 300


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    seen: dict[str, int],
    *,
    now: float | None = None,
) -> bool:
    """The README's verifier, its `seen` signatures and its clock passed in: a fresh
    timestamp, HMAC-SHA256 over b"{timestamp}.{body}", the Idempotency-Key the signed
    request_id, and no signature accepted twice (a replay)."""
    now = time.time() if now is None else now
    timestamp = headers.get("X-Credmail-Timestamp", "")
    signature = headers.get("X-Credmail-Signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE:
        return False
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest("sha256=" + mac.hexdigest(), signature):
        return False
    if headers.get("Idempotency-Key") != json.loads(body).get("request_id"):
        return False
    for old in [s for s, until in seen.items() if until < now]:
        del seen[old]
    if signature in seen:
        return False
    seen[signature] = int(timestamp) + TOLERANCE
    return True


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    secret: str = SECRET
    script: list[int] = field(default_factory=list)  # statuses to answer, in order; then 200
    received: list[Received] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # the verifier's accepted signatures
    release: threading.Event = field(default_factory=threading.Event)
    certificate: Path | None = None  # HTTPS with this certificate (key.pem beside it)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "http" if self.certificate is None else "https"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}/credmail"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                ok = verify(receiver.secret.encode(), headers, body, receiver.seen)
                receiver.received.append(Received(headers, body, ok))
                status = receiver.script.pop(0) if receiver.script else 200
                if status == HANG:
                    receiver.release.wait(30)
                    return
                if not ok:
                    status = 401
                reply = b'{"ok": true}' if status < 300 else b'{"error": "no"}'
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate, self.certificate.with_name("key.pem"))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
