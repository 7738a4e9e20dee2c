"""The `webhook` link backend against a real HTTP server on loopback that checks the signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credmail.adapters.webhook_backend import WebhookBackend, encode_body, sign
from credmail.service.link_backends import SpendRequest, SpendResult
from tests.support.servers import free_port, make_certificate
from tests.support.webhook_server import HANG, SECRET, WebhookReceiver, verify

pytestmark = pytest.mark.integration

CONFIRMED = datetime(2026, 11, 28, 19, 5, 30, tzinfo=UTC)
REQUEST = SpendRequest(
    request_id="sel-4f2a9c",
    username="mrossi",
    purpose="reset",
    role="parent",
    first_name="Mario",
    last_name="Rossi",
    address="mario.rossi@famiglia.test",
    requested_at=datetime(2026, 11, 28, 18, 50, tzinfo=UTC),
    confirmed_at=CONFIRMED,
)


def backend_for(url: str, **overrides: object) -> tuple[WebhookBackend, list[float]]:
    slept: list[float] = []
    values: dict[str, object] = {
        "url": url,
        "secret": SECRET,
        "timeout": 5.0,
        "retries": 2,
        "backoff_seconds": 0.5,
        "sleep": slept.append,  # the backoff is recorded, not waited
    } | overrides
    return WebhookBackend(**values), slept  # type: ignore[arg-type]


def test_2xx_is_done_with_a_verified_signature_and_the_documented_body(
    webhook_receiver: WebhookReceiver,
) -> None:
    backend, slept = backend_for(webhook_receiver.url)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.DONE
    assert slept == []
    [hit] = webhook_receiver.received
    assert hit.signature_ok
    assert hit.headers["Idempotency-Key"] == "sel-4f2a9c"
    assert hit.headers["X-Credmail-Signature"] == sign(
        SECRET.encode(), hit.headers["X-Credmail-Timestamp"], hit.body
    )
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.json == {
        "request_id": "sel-4f2a9c",
        "username": "mrossi",
        "purpose": "reset",
        "person": {"first_name": "Mario", "last_name": "Rossi", "role": "parent"},
        "confirmed_at": "2026-11-28T19:05:30Z",
    }
    assert "famiglia.test" not in hit.body.decode()  # the address on file is not sent


def test_the_receiver_would_notice_a_wrong_secret_or_a_changed_body(
    webhook_receiver: WebhookReceiver,
) -> None:
    backend, _ = backend_for(webhook_receiver.url, secret="another-secret-0123456789abcdefgh")

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.RETRY_LATER  # the receiver answered 401
    assert outcome.detail == "webhook answered 401"
    [hit] = webhook_receiver.received
    assert not hit.signature_ok
    good = dict(hit.headers) | {
        "X-Credmail-Signature": sign(SECRET.encode(), hit.headers["X-Credmail-Timestamp"], hit.body)
    }
    assert not verify(SECRET.encode(), good, hit.body.replace(b"mrossi", b"admin1"), {})
    old = int(good["X-Credmail-Timestamp"]) + 301
    assert not verify(SECRET.encode(), good, hit.body, {}, now=old)  # a replay, too late
    seen: dict[str, int] = {}
    assert verify(SECRET.encode(), good, hit.body, seen)
    assert not verify(SECRET.encode(), good, hit.body, seen)  # a replay, in time


def test_5xx_then_2xx_is_retried_with_backoff_and_the_same_idempotency_key(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.script = [503, 502]
    backend, slept = backend_for(webhook_receiver.url)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.DONE
    assert len(webhook_receiver.received) == 3
    assert {h.headers["Idempotency-Key"] for h in webhook_receiver.received} == {"sel-4f2a9c"}
    assert all(h.signature_ok for h in webhook_receiver.received)
    assert {h.body for h in webhook_receiver.received} == {encode_body(REQUEST)}
    assert slept == [0.5, 1.0]
    # the backoff was not waited: still each attempt has its own timestamp and signature,
    # which the receiver, refusing any signature it has seen, accepted each time
    stamps = [int(h.headers["X-Credmail-Timestamp"]) for h in webhook_receiver.received]
    assert stamps == sorted(set(stamps))


def test_429_is_retried_too(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [429]
    backend, slept = backend_for(webhook_receiver.url)
    assert backend.spend(REQUEST).done
    assert slept == [0.5]


def test_5xx_every_time_is_retry_later_after_the_retries(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [500, 500, 500, 200]
    backend, slept = backend_for(webhook_receiver.url)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail == "webhook answered 500"
    assert len(webhook_receiver.received) == 3
    assert slept == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 404, 409, 422, 302])
def test_4xx_and_redirects_are_retry_later_without_retrying(
    webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.script = [status]
    backend, slept = backend_for(webhook_receiver.url)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail == f"webhook answered {status}"
    assert len(webhook_receiver.received) == 1
    assert slept == []


def test_a_timeout_is_retried_then_retry_later(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [HANG, HANG]
    backend, slept = backend_for(webhook_receiver.url, timeout=0.3, retries=1)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail is not None and outcome.detail.startswith("timeout")
    assert len(webhook_receiver.received) == 2
    assert slept == [0.5]


def test_a_timeout_then_success_is_done(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [HANG]
    backend, _ = backend_for(webhook_receiver.url, timeout=0.3, retries=1)
    assert backend.spend(REQUEST).done
    assert [h.headers["Idempotency-Key"] for h in webhook_receiver.received] == ["sel-4f2a9c"] * 2


def test_nothing_listening_is_retry_later() -> None:
    backend, slept = backend_for(f"http://127.0.0.1:{free_port()}/credmail", retries=1)

    outcome = backend.spend(REQUEST)

    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail == "connection error: ConnectError"
    assert slept == [0.5]


def test_https_trusts_ca_file_alone(tmp_path: Path) -> None:
    make_certificate(tmp_path)
    receiver = WebhookReceiver(certificate=tmp_path / "cert.pem").start()
    try:
        trusted, _ = backend_for(receiver.url, ca_file=tmp_path / "cert.pem")
        assert trusted.spend(REQUEST).done
        [hit] = receiver.received
        assert hit.signature_ok
        unknown, _ = backend_for(receiver.url, retries=0)  # the system's CAs do not know it
        outcome = unknown.spend(REQUEST)
    finally:
        receiver.stop()
    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail == "connection error: ConnectError"
    assert len(receiver.received) == 1


def test_no_secret_or_signature_in_the_logs(
    webhook_receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    from credmail.logs import configure_logging

    configure_logging("debug", "json")
    webhook_receiver.script = [500]
    backend, _ = backend_for(webhook_receiver.url)
    backend.spend(REQUEST)

    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    events = [line for line in lines if line.get("event") == "webhook.spend"]
    assert events and events[-1]["attempts"] == 2 and events[-1]["result"] == "done"
    logged = captured.out + captured.err
    assert SECRET not in logged and "sha256=" not in logged


def test_an_attempt_is_bounded_in_wall_clock_time_even_against_a_dripping_server() -> None:
    """requests bounds each read on its own: a server sending a byte every 0.3 s would
    hold an attempt for ever. The attempt ends at `timeout`, a retry-later, link kept, and
    its connection is shut (the server's next bytes fail)."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop, cut = threading.Event(), threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000:
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    cut.set()
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    backend, _ = backend_for(f"http://127.0.0.1:{port}/hook", timeout=1.0, retries=0)
    started = time.monotonic()
    try:
        outcome = backend.spend(REQUEST)
        elapsed = time.monotonic() - started
        assert cut.wait(30), "the attempt's connection stayed open past the deadline"
    finally:
        stop.set()
        listener.close()
    assert elapsed < 3
    assert outcome.result is SpendResult.RETRY_LATER and "timeout" in (outcome.detail or "")
