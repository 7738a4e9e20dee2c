"""The staff desk: console accounts (argon2id passwords, optional TOTP), sign-in with a
lockout that grows with each failure, server-side sessions with an idle timeout."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from credmail.service.desks.base import DeskError
from credmail.service.ports import (
    Clock,
    SignInFailures,
    StaffAccount,
    StaffSessionRecord,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.privacy import CONSOLE_IDLE_TIMEOUT
from credmail.service.review import STAFF_ROLES, Actor, audit_entry

if TYPE_CHECKING:  # argon2 and pyotp load on first use: every entry point builds this desk
    from argon2 import PasswordHasher

IDLE_TIMEOUT = CONSOLE_IDLE_TIMEOUT
FREE_FAILURES = 5  # failures before any wait
FIRST_WAIT = timedelta(seconds=30)  # then 30 s, 1 min, 2 min, … up to MAX_WAIT
MAX_WAIT = timedelta(hours=1)
ADDRESS_MEMORY = timedelta(days=1)  # an address's failures are forgotten a day later
MIN_PASSWORD = 12
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class StaffView:
    name: str
    role: str
    active: bool
    totp: bool
    created_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """The new session: `token` goes in the cookie (only its hash is stored)."""

    token: str = ""
    csrf: str = ""
    name: str = ""
    role: str = ""

    def __repr__(self) -> str:
        return f"SignedIn(name={self.name!r}, role={self.role!r})"


@dataclass(frozen=True)
class StaffSession:
    name: str
    role: str
    csrf: str

    def actor(self) -> Actor:
        return Actor(self.name, "web", self.role)


class SignInRefused(Exception):
    """Worded for the sign-in page; `wait_seconds` while a lockout holds."""

    def __init__(self, message: str, wait_seconds: int | None = None) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _wait(failures: int) -> timedelta | None:
    if failures < FREE_FAILURES:
        return None
    return min(FIRST_WAIT * (1 << (failures - FREE_FAILURES)), MAX_WAIT)


class StaffDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        issuer: str = "credmail",
        idle_timeout: timedelta = IDLE_TIMEOUT,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.uow, self.clock, self.issuer, self.idle_timeout = uow, clock, issuer, idle_timeout
        if hasher is not None:
            self.hasher = hasher
        self.log = structlog.get_logger("credmail.desks.staff")

    @functools.cached_property
    def hasher(self) -> PasswordHasher:
        """argon2id with the library's current parameters, loaded on first use."""
        from argon2 import PasswordHasher

        return PasswordHasher()

    @functools.cached_property
    def _dummy(self) -> str:
        """A hash to verify against for an unknown name (same time as a known one). Made
        on first use, not at start: argon2id takes 64 MiB and ~0.1 s, which every entry
        point (the daemon, each CLI command) would otherwise pay."""
        return self.hasher.hash(secrets.token_hex(16))

    # accounts -----------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, actor: Actor) -> StaffView:
        actor.require("staff.manage")
        name = name.strip()
        if not name or len(name) > 100 or any(c.isspace() for c in name):
            raise DeskError("the name must be one word of at most 100 characters")
        if role not in STAFF_ROLES:
            raise DeskError(f"role must be one of: {', '.join(STAFF_ROLES)}")
        _check_password(name, password)
        now = self.clock()
        account = StaffAccount(name, role, self.hasher.hash(password), True, now, now)
        with self.uow() as uow:
            if uow.staff.get(name) is not None:
                raise DeskError(f"staff member {name} already exists")
            uow.staff.add(account)
            uow.audit.add(audit_entry(actor, now, "staff.add", name, f"ruolo {role}"))
            uow.commit()
        return _view(account)

    def passwd(self, name: str, password: str, actor: Actor) -> None:
        actor.require("staff.manage")
        _check_password(name, password)
        now = self.clock()
        with self.uow() as uow:
            account = self._account(uow, name)
            uow.staff.update(
                replace(account, password_hash=self.hasher.hash(password), password_changed_at=now)
            )
            uow.staff.close_sessions_of(name)
            uow.audit.add(audit_entry(actor, now, "staff.passwd", name))
            uow.commit()

    def disable(self, name: str, actor: Actor) -> None:
        actor.require("staff.manage")
        now = self.clock()
        with self.uow() as uow:
            account = self._account(uow, name)
            uow.staff.update(replace(account, active=False))
            uow.staff.close_sessions_of(name)
            uow.audit.add(audit_entry(actor, now, "staff.disable", name))
            uow.commit()

    def totp(self, name: str, actor: Actor) -> str:
        """Turn on the second factor with a new secret; returns the otpauth:// URI."""
        actor.require("staff.manage")
        import pyotp

        secret = pyotp.random_base32()
        with self.uow() as uow:
            account = self._account(uow, name)
            uow.staff.update(replace(account, totp_secret=secret))
            uow.audit.add(audit_entry(actor, self.clock(), "staff.totp", name))
            uow.commit()
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=self.issuer)

    def listing(self) -> list[StaffView]:
        with self.uow(read_only=True) as uow:
            return [_view(account) for account in uow.staff.listing()]

    def _account(self, uow: UnitOfWork, name: str) -> StaffAccount:
        account = uow.staff.get(name)
        if account is None:
            raise DeskError(f"no staff member named {name}")
        return account

    # signing in -----------------------------------------------------------------------

    def sign_in(self, name: str, password: str, code: str, address: str) -> SignedIn:
        """Check the password (and the TOTP code when the account has one); after
        FREE_FAILURES failures the account and the client address each wait, longer
        after every further failure."""
        now = self.clock()
        keys = (f"account:{name[:100]}", f"address:{address[:200]}")
        with self.uow() as uow:
            wait = max((self._locked(uow, key, now) for key in keys), default=0)
            if wait:
                raise SignInRefused(_wait_text(wait), wait)
            account = uow.staff.get(name)
            ok = self._verify(account, password, code, now)
            if account is None or not ok or not account.active:
                for key in keys:
                    self._fail(uow, key, now)
                known = name if account is not None else None
                uow.audit.add(
                    audit_entry(Actor("?", "web"), now, "sign_in.failed", known, "da " + address)
                )
                uow.commit()
                raise SignInRefused("nome utente, password o codice non validi")
            uow.staff.clear_failures(keys[0])
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            uow.staff.open_session(_hash(token), StaffSessionRecord(name, csrf, now, now))
            uow.audit.add(audit_entry(Actor(name, "web", account.role), now, "sign_in", name))
            uow.commit()
        return SignedIn(token, csrf, name, account.role)

    def _verify(
        self, account: StaffAccount | None, password: str, code: str, now: datetime
    ) -> bool:
        import pyotp
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            self.hasher.verify(account.password_hash if account else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        if account is None:
            return False
        if account.totp_secret:
            totp = pyotp.TOTP(account.totp_secret)
            return totp.verify(code.strip(), for_time=now, valid_window=1)
        return True

    def _locked(self, uow: UnitOfWork, key: str, now: datetime) -> int:
        state = uow.staff.failures(key)
        if state is None or state.locked_until is None or state.locked_until <= now:
            return 0
        return max(1, int((state.locked_until - now).total_seconds() + 0.999))

    def _fail(self, uow: UnitOfWork, key: str, now: datetime) -> None:
        state = uow.staff.failures(key)
        failures = 1
        if state is not None and now - state.last_failure_at < ADDRESS_MEMORY:
            failures = state.failures + 1
        wait = _wait(failures)
        uow.staff.set_failures(key, SignInFailures(failures, now, now + wait if wait else None))

    def session(self, token: str) -> StaffSession | None:
        """The signed-in staff member, or None (unknown, idle too long, account disabled)."""
        if not token:
            return None
        now = self.clock()
        token_hash = _hash(token)
        with self.uow() as uow:
            record = uow.staff.session(token_hash)
            if record is None:
                return None
            account = uow.staff.get(record.staff_name)
            if now - record.last_seen_at > self.idle_timeout or not (account and account.active):
                uow.staff.close_session(token_hash)
                uow.commit()
                return None
            if now - record.last_seen_at >= TOUCH_EVERY:
                uow.staff.touch_session(token_hash, now)
                uow.commit()
        return StaffSession(account.name, account.role, record.csrf)

    def sign_out(self, token: str) -> None:
        now = self.clock()
        with self.uow() as uow:
            record = uow.staff.session(_hash(token))
            if record is None:
                return
            uow.staff.close_session(_hash(token))
            actor = Actor(record.staff_name, "web")
            uow.audit.add(audit_entry(actor, now, "sign_out", record.staff_name))
            uow.commit()

    def purge_sessions(self) -> int:
        with self.uow() as uow:
            gone = uow.staff.purge_sessions(self.clock() - self.idle_timeout)
            uow.commit()
        return gone


def _check_password(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DeskError(f"the password must have at least {MIN_PASSWORD} characters")
    if name.casefold() in password.casefold():
        raise DeskError("the password must not contain the name")


def _view(account: StaffAccount) -> StaffView:
    return StaffView(
        account.name,
        account.role,
        account.active,
        account.totp_secret is not None,
        account.created_at,
    )


def _wait_text(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    when = f"{seconds} secondi" if seconds < 60 else f"{minutes} minuti"
    return f"troppi tentativi non riusciti: riprovare tra {when}"
