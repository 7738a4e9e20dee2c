"""Token source rules and the watcher's answer to an expired session (no servers)."""

from __future__ import annotations

import imaplib
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from credmail.adapters.imap import ImapSource
from credmail.adapters.oauth import AccessToken, SignInError, TokenSource, sign_in_error
from credmail.runners.watcher import InboxWatcher
from credmail.service.inbox_sync import SyncStats


@pytest.mark.parametrize(
    ("error", "detail", "code"),
    [
        (
            "invalid_client",
            "AADSTS7000222: The provided client secret keys are expired.",
            "AADSTS7000222",
        ),
        ("invalid_grant", "AADSTS50173: The provided grant has expired", "AADSTS50173"),
        ("invalid_grant", "AADSTS700082: expired due to inactivity", "AADSTS700082"),
        ("unauthorized_client", "Client is unauthorized", "unauthorized_client"),
        ("invalid_client", "", "invalid_client"),
        ("invalid_grant", "", "invalid_grant"),
    ],
)
def test_permanent_sign_in_failures_name_cause_and_fix(error: str, detail: str, code: str) -> None:
    exc = sign_in_error(error, detail)
    assert exc.permanent and exc.code == code and exc.cause and exc.fix
    assert detail not in str(exc) or not detail  # the provider's text is not echoed


def test_passing_failures_are_not_permanent() -> None:
    assert not sign_in_error("temporarily_unavailable").permanent
    assert not sign_in_error("{weird token-ish text}").permanent
    assert "weird" not in str(sign_in_error("{weird token-ish text}"))


def test_tokens_are_reused_until_a_fifth_of_their_life_is_left() -> None:
    now = [1000.0]
    issued: list[AccessToken] = []

    def fetch() -> AccessToken:
        issued.append(AccessToken(f"t{len(issued)}", now[0] + 10, 10))
        return issued[-1]

    tokens = TokenSource(fetch, clock=lambda: now[0])
    assert tokens.token().value == "t0"
    now[0] += 7.9
    assert tokens.token().value == "t0"
    now[0] += 0.2  # 1.9 s left of 10: renew
    assert tokens.token().value == "t1"
    assert tokens.token(fresh=True).value == "t2"
    assert "t2" not in repr(issued[-1])


def test_an_imap_bye_for_an_expired_token_is_recognised() -> None:
    tokens = TokenSource(lambda: AccessToken("x", 0, 1))
    source = ImapSource("127.0.0.1", 1, "none", "u", "", "INBOX", [], tokens=tokens)
    bye = imaplib.IMAP4.abort("socket error: Session invalidated - AccessTokenExpired")
    assert source.expired_session(bye)
    assert not source.expired_session(imaplib.IMAP4.abort("socket error: EOF"))
    plain = ImapSource("127.0.0.1", 1, "none", "u", "p", "INBOX", [])
    assert not plain.expired_session(bye)


class Source:
    def __init__(self) -> None:
        self.closed = 0

    def expired_session(self, exc: BaseException) -> bool:
        return "AccessTokenExpired" in str(exc)

    def close(self) -> None:
        self.closed += 1

    def wait_for_mail(self, timeout: float) -> bool:
        return True


class Pipeline:
    def __init__(self, stop: threading.Event, failure: Exception) -> None:
        self.calls, self.stop, self.failure = 0, stop, failure

    def sync(self, source: Any, should_stop: Any = None) -> SyncStats:
        self.calls += 1
        if self.calls == 1:
            raise self.failure
        self.stop.set()
        return SyncStats()


def test_the_watcher_signs_in_again_at_once_after_an_expired_session() -> None:
    stop = threading.Event()
    pipeline = Pipeline(stop, imaplib.IMAP4.abort("Session invalidated - AccessTokenExpired"))
    source = Source()
    watcher = InboxWatcher(pipeline, source, stop)  # type: ignore[arg-type]
    with capture_logs() as logs:
        watcher.run()
    assert pipeline.calls == 2 and watcher.backoff.failures == 0
    assert [entry["event"] for entry in logs] == ["mailbox.token_expired"]


def test_the_watcher_stays_up_when_sign_in_needs_a_person() -> None:
    stop = threading.Event()
    failure = SignInError("invalid_grant", "revoked", "run credmail oauth login", True)
    pipeline = Pipeline(stop, failure)
    watcher = InboxWatcher(pipeline, Source(), stop)  # type: ignore[arg-type]
    with capture_logs() as logs:
        watcher.run()
    assert pipeline.calls == 2 and watcher.signed_out is None  # signed in again: cleared
    assert logs == []  # the token source logs the cause, once
