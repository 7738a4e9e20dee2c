"""Signing in to the console on SQLite and PostgreSQL: a burst of guesses checks no more
passwords than one-at-a-time use would, no write lock is held while a password is
checked, a TOTP code opens one session only."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.desks import Actor
from credmail.service.desks.staff import SignedIn, SignInRefused, StaffDesk
from tests.fakes import FakeClock
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.integration

CLI = Actor("root", "cli")
PASSWORD = "una password lunga"
BURST = 40


class CountingHasher(PasswordHasher):
    """A fast argon2id that counts the passwords it checks; each check takes `pause`
    seconds, or waits for `gate` when one is given."""

    def __init__(self, pause: float = 0.02, gate: threading.Event | None = None) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.pause, self.gate = pause, gate
        self.checks = 0
        self.checking = threading.Event()
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # type: ignore[override]
        with self._lock:
            self.checks += 1
        self.checking.set()
        if self.gate is not None:
            self.gate.wait(30)
        time.sleep(self.pause)
        return super().verify(hash, password)


def staff_app(db_url: str, tmp_path: Path, clock: FakeClock) -> App:
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_CONSOLE__TOTP_KEY_FILE": str(tmp_path / "totp.key"),
    }
    return make_app(load_settings(None, environ=env), clock=clock, directory=False)


def desk_on(app: App, hasher: PasswordHasher) -> StaffDesk:
    """The application's staff desk with another password hasher."""
    desk = app.desks.staff
    return StaffDesk(desk.uow, desk.clock, hasher=hasher, seal=desk.seal)


def at_once(attempts: Sequence[Callable[[], SignedIn]]) -> list[SignedIn | SignInRefused]:
    """Run the attempts in threads released together; what each returned or raised."""
    start = threading.Barrier(len(attempts))
    outcomes: list[SignedIn | SignInRefused] = []

    def run(attempt: Callable[[], SignedIn]) -> None:
        start.wait()
        try:
            outcomes.append(attempt())
        except SignInRefused as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def guesses(desk: StaffDesk, count: int, tag: str) -> list[Callable[[], SignedIn]]:
    """Wrong passwords for olga, each from its own client address."""
    return [
        functools.partial(desk.sign_in, "olga", f"sbagliata-{tag}-{n:04}", "", f"10.{tag}.{n}.1")
        for n in range(count)
    ]


def test_a_burst_of_guesses_checks_no_more_than_one_at_a_time_would(
    db_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    app = staff_app(db_url, tmp_path, clock)
    hasher = CountingHasher()
    desk = desk_on(app, hasher)
    desk.add("olga", "operatore", PASSWORD, CLI)
    for n in range(4):  # one failure short of the first wait
        with pytest.raises(SignInRefused, match="non validi"):
            desk.sign_in("olga", f"sbagliata-{n:08}", "", f"10.0.0.{n}")
    hasher.checks = 0
    at_once(guesses(desk, BURST, "1"))
    assert hasher.checks == 1  # one at a time: the fifth guess is checked, then a wait
    with pytest.raises(SignInRefused, match="riprovare") as locked:
        desk.sign_in("olga", PASSWORD, "", "10.9.9.9")
    assert locked.value.wait_seconds == 30

    clock.now += timedelta(seconds=31)
    hasher.checks = 0
    at_once(guesses(desk, BURST, "2"))
    assert hasher.checks == 1  # after the wait, one guess, then a longer wait
    with pytest.raises(SignInRefused, match="riprovare") as again:
        desk.sign_in("olga", PASSWORD, "", "10.9.9.9")
    assert again.value.wait_seconds == 60
    clock.now += timedelta(seconds=61)
    assert desk.sign_in("olga", PASSWORD, "", "10.9.9.9").name == "olga"


def test_checking_a_password_holds_no_write_lock(db_url: str, tmp_path: Path) -> None:
    """While argon2 runs (about 0.1 s, 64 MiB), other writers (the reset page, the
    daemon) go on: on SQLite a transaction held open across the check would stop them."""
    app = staff_app(db_url, tmp_path, FakeClock())
    gate = threading.Event()
    hasher = CountingHasher(pause=0, gate=gate)
    desk = desk_on(app, hasher)
    desk.add("olga", "operatore", PASSWORD, CLI)
    signing = threading.Thread(target=desk.sign_in, args=("olga", PASSWORD, "", "10.0.0.1"))
    wrote = threading.Event()

    def write() -> None:
        app.desks.audit.record(CLI, "directory.language", "T3001", "en")
        wrote.set()

    writer = threading.Thread(target=write)
    signing.start()
    try:
        assert hasher.checking.wait(10)
        writer.start()
        assert wrote.wait(3), "a write waited for a password check"
    finally:
        gate.set()
        signing.join()
        if writer.is_alive() or wrote.is_set():
            writer.join()
    assert desk.session(desk.sign_in("olga", PASSWORD, "", "10.0.0.1").token) is not None


def test_a_totp_code_opens_one_session_only(db_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    app = staff_app(db_url, tmp_path, clock)
    desk = desk_on(app, CountingHasher(pause=0.02))
    desk.add("olga", "operatore", PASSWORD, CLI)
    totp = pyotp.parse_uri(desk.totp("olga", CLI))
    assert isinstance(totp, pyotp.TOTP)
    code = totp.at(clock())
    twice = [functools.partial(desk.sign_in, "olga", PASSWORD, code, f"10.0.0.{n}") for n in (1, 2)]
    outcomes = at_once(twice)
    assert sorted(type(o).__name__ for o in outcomes) == ["SignInRefused", "SignedIn"]
    with pytest.raises(SignInRefused, match="non validi"):
        desk.sign_in("olga", PASSWORD, code, "10.0.0.3")  # later, the same code again
    clock.now += timedelta(seconds=30)
    assert desk.sign_in("olga", PASSWORD, totp.at(clock()), "10.0.0.4").name == "olga"
    with app.uow() as uow:
        stored = uow.staff.get("olga")
    assert stored is not None and totp.secret not in (stored.totp_secret or "")  # sealed


def test_a_session_ends_after_its_maximum_age_however_used(db_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    env = {**IDENTITY, "CREDMAIL_DATABASE__URL": db_url, "CREDMAIL_CONSOLE__SESSION_MAX_HOURS": "1"}
    app = make_app(load_settings(None, environ=env), clock=clock, directory=False)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    token = app.desks.staff.sign_in("olga", PASSWORD, "", "10.0.0.1").token
    for _ in range(2):
        clock.now += timedelta(minutes=29)
        assert app.desks.staff.session(token) is not None
    clock.now += timedelta(minutes=29)  # 87 minutes after sign-in, 29 after last use
    assert app.desks.staff.session(token) is None
