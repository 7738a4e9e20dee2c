"""The staff desk: console accounts (argon2id passwords, optional TOTP with a sealed
secret), sign-in with a lockout that grows with each failure, server-side sessions with an
idle timeout and a maximum age."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from credmail.service.desks.base import DeskError
from credmail.service.desks.sign_in_rules import one_more, remaining, totp_step, wait_text
from credmail.service.ports import (
    Clock,
    SealError,
    SecretSeal,
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
MAX_AGE = timedelta(hours=12)  # a session ends this long after sign-in, however used
MIN_PASSWORD = 12
TOUCH_EVERY = timedelta(seconds=60)
SEALED = "sealed:"  # a stored TOTP secret that starts so is sealed (SecretSeal)
KEY_SETTING = "console.totp_key_file"


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


@dataclass(frozen=True)
class _Attempt:
    """A sign-in counted as a failure before its check: the account as read then, and the
    client address's failures before and after counting it."""

    account: StaffAccount | None
    address_before: SignInFailures | None
    address_counted: SignInFailures


class StaffDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        issuer: str = "credmail",
        idle_timeout: timedelta = IDLE_TIMEOUT,
        hasher: PasswordHasher | None = None,
        max_age: timedelta = MAX_AGE,
        seal: SecretSeal | None = None,
    ) -> None:
        self.uow, self.clock, self.issuer, self.idle_timeout = uow, clock, issuer, idle_timeout
        self.max_age, self.seal = max_age, seal
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
        password_hash = self.hasher.hash(password)  # before the transaction: argon2 is slow
        now = self.clock()
        with self.uow() as uow:
            account = self._account(uow, name)
            changed = replace(
                account,
                password_hash=password_hash,
                password_changed_at=now,
                password_trimmed=False,
            )
            uow.staff.update(changed)
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
        if self.seal is None:
            raise DeskError(f"{KEY_SETTING} is not set: the TOTP secret is stored encrypted")
        try:
            sealed = SEALED + self.seal.seal(secret)
        except SealError as exc:
            raise DeskError(str(exc)) from None
        with self.uow() as uow:
            account = self._account(uow, name)
            uow.staff.update(replace(account, totp_secret=sealed))
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
        after every further failure.

        Each attempt is counted as a failure before its password is checked, in a short
        transaction that holds both counters: however many arrive at once, no more are
        checked than one at a time would allow. The check (argon2id, about 0.1 s) runs
        outside any transaction, so no write lock is held meanwhile; a success then takes
        its count back, provided the account is as it was when counted and its TOTP code
        was not used before."""
        now = self.clock()
        keys = (f"account:{name[:100]}", f"address:{address[:200]}")
        attempt = self._count_attempt(name, keys, now)
        verified, step = self._verify(attempt.account, password, code, now)
        signed = self._open_session(attempt, keys, step, now) if verified else None
        if signed is None:
            with self.uow() as uow:
                known = name if attempt.account is not None else None
                failed = audit_entry(
                    Actor("?", "web"), now, "sign_in.failed", known, "da " + address
                )
                uow.audit.add(failed)
                uow.commit()
            raise SignInRefused("nome utente, password o codice non validi")
        return signed

    def _count_attempt(self, name: str, keys: tuple[str, str], now: datetime) -> _Attempt:
        with self.uow() as uow:
            before = [uow.staff.hold_failures(key, now) for key in keys]
            wait = max(remaining(state, now) for state in before)
            if wait:
                raise SignInRefused(wait_text(wait), wait)
            counted = [one_more(state, now) for state in before]
            for key, state in zip(keys, counted, strict=True):
                uow.staff.set_failures(key, state)
            account = uow.staff.get(name)
            uow.commit()
        return _Attempt(account, before[1], counted[1])

    def _open_session(
        self, attempt: _Attempt, keys: tuple[str, str], step: int | None, now: datetime
    ) -> SignedIn | None:
        """The session, or None: the account changed since it was read (disabled, a new
        password or TOTP secret), or the TOTP code was accepted before."""
        if attempt.account is None:
            return None
        name = attempt.account.name
        with self.uow() as uow:
            account = uow.staff.get(name)
            if account is None or account != attempt.account:
                return None
            if step is not None and not uow.staff.use_totp_step(name, step):
                return None
            uow.staff.clear_failures(keys[0])
            uow.staff.restore_failures(keys[1], attempt.address_counted, attempt.address_before)
            self._seal_clear_secret(uow, account)
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            uow.staff.open_session(_hash(token), StaffSessionRecord(name, csrf, now, now))
            uow.audit.add(audit_entry(Actor(name, "web", account.role), now, "sign_in", name))
            uow.commit()
        return SignedIn(token, csrf, name, account.role)

    def _verify(
        self, account: StaffAccount | None, password: str, code: str, now: datetime
    ) -> tuple[bool, int | None]:
        """(the password and code are right, the TOTP time step the code matched)."""
        if not self._password_matches(account, password):
            return False, None
        if account is None or not account.active:
            return False, None
        if not account.totp_secret:
            return True, None
        secret = self._open_secret(account.totp_secret)
        step = totp_step(secret, code, now) if secret else None
        return step is not None, step

    def _password_matches(self, account: StaffAccount | None, password: str) -> bool:
        """As typed; for an account whose hash may be of the trimmed password (set before
        passwords were kept as typed), the trimmed password too."""
        stored = account.password_hash if account else self._dummy
        if self._matches(stored, password):
            return True
        trimmed = password.strip()
        legacy = account is not None and account.password_trimmed
        return legacy and trimmed != password and self._matches(stored, trimmed)

    def _matches(self, stored: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _open_secret(self, stored: str) -> str | None:
        if not stored.startswith(SEALED):
            return stored  # kept in clear by an older version: sealed at its next sign-in
        try:
            if self.seal is None:
                raise SealError(f"{KEY_SETTING} is not set: a TOTP secret is sealed")
            return self.seal.open(stored.removeprefix(SEALED))
        except SealError as exc:
            self.log.error("staff.totp_secret_unusable", error=str(exc))
            return None

    def _seal_clear_secret(self, uow: UnitOfWork, account: StaffAccount) -> None:
        """A secret still in clear is sealed once a key is there (never made here: the web
        processes only read the key `credmail staff totp` created)."""
        secret = account.totp_secret
        if not secret or secret.startswith(SEALED) or self.seal is None or not self.seal.ready():
            return
        try:
            sealed = SEALED + self.seal.seal(secret)
        except SealError as exc:
            self.log.warning("staff.totp_secret_left_clear", error=str(exc))
            return
        uow.staff.update(replace(account, totp_secret=sealed))

    def session(self, token: str) -> StaffSession | None:
        """The signed-in staff member, or None (unknown, idle too long, older than the
        maximum age, account disabled)."""
        if not token:
            return None
        now = self.clock()
        token_hash = _hash(token)
        with self.uow() as uow:
            record = uow.staff.session(token_hash)
            if record is None:
                return None
            account = uow.staff.get(record.staff_name)
            idle = now - record.last_seen_at > self.idle_timeout
            old = now - record.created_at > self.max_age
            if idle or old or not (account and account.active):
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
