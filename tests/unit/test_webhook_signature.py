"""The webhook's signature as the README documents it: its verifier, run as written."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credmail.adapters.webhook_backend import encode_body, payload, sign
from credmail.service.link_backends import SpendRequest

README = (Path(__file__).parents[2] / "README.md").read_text()
SECRET = b"0123456789abcdef0123456789abcdef"
REQUEST = SpendRequest(
    request_id="sel-1",
    username="mrossi",
    purpose="reset",
    role="parent",
    first_name="Niccolò",
    last_name="D'Angelo",
    address="x@famiglia.test",
    requested_at=datetime(2026, 11, 28, 18, 0, tzinfo=UTC),
    confirmed_at=datetime(2026, 11, 28, 19, 0, 1, 500_000, tzinfo=UTC),
    new_password="never-sent-anywhere",
)


def readme_verifier() -> Any:
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "def verify(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace["verify"]


def test_the_readme_verifier_accepts_what_credmail_signs_and_nothing_else() -> None:
    verify = readme_verifier()
    body = encode_body(REQUEST)
    now = str(int(time.time()))
    headers = {
        "Idempotency-Key": "sel-1",
        "X-Credmail-Timestamp": now,
        "X-Credmail-Signature": sign(SECRET, now, body),
    }
    assert verify(SECRET, headers, body)
    assert not verify(b"another-secret", headers, body)
    assert not verify(SECRET, headers, body + b" ")
    stale = str(int(time.time()) - 600)
    assert not verify(SECRET, headers | {"X-Credmail-Timestamp": stale}, body)
    old = headers | {
        "X-Credmail-Timestamp": stale,
        "X-Credmail-Signature": sign(SECRET, stale, body),
    }
    assert not verify(SECRET, old, body)  # correctly signed, but too old: a replay
    assert not verify(SECRET, {}, body)


def signed(body: bytes, timestamp: int, key: str = "sel-1") -> dict[str, str]:
    stamp = str(timestamp)
    return {
        "Idempotency-Key": key,
        "X-Credmail-Timestamp": stamp,
        "X-Credmail-Signature": sign(SECRET, stamp, body),
    }


def test_the_readme_verifier_refuses_replays_and_accepts_credmails_retries() -> None:
    verify = readme_verifier()
    body, now = encode_body(REQUEST), int(time.time())
    first = signed(body, now)
    assert verify(SECRET, first, body)
    assert not verify(SECRET, first, body)  # the same request again, seconds later
    assert not verify(SECRET, first | {"Idempotency-Key": "sel-2"}, body)  # a new key
    assert not verify(SECRET, signed(body, now + 2, key="sel-2"), body)  # not the signed id
    assert verify(SECRET, signed(body, now + 1), body)  # credmail's retry: a later second


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET, b"1790000000.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, "1790000000", b"{}") == f"sha256={expected}"


def test_the_body_is_compact_sorted_utf8_and_carries_no_password_or_address() -> None:
    body = encode_body(REQUEST)
    assert body.startswith(b'{"confirmed_at":"2026-11-28T19:00:01.500000Z","person":{')
    assert "Niccolò".encode() in body  # UTF-8, not \\u escapes
    assert b"never-sent-anywhere" not in body and b"famiglia.test" not in body
    assert set(payload(REQUEST)) == {"request_id", "username", "purpose", "person", "confirmed_at"}


def test_a_naive_confirmation_time_is_taken_as_utc() -> None:
    naive = dataclasses.replace(REQUEST, confirmed_at=datetime(2026, 1, 2, 3, 4))
    assert payload(naive)["confirmed_at"] == "2026-01-02T03:04:00Z"
