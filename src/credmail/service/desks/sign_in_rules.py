"""The arithmetic of signing in to the console: how long a key (an account, a client
address) waits after its failures, and which TOTP time step a code belongs to."""

from __future__ import annotations

import hmac
import unicodedata
from datetime import datetime, timedelta

from credmail.service.ports import SignInFailures
from credmail.service.presentation import plural

FREE_FAILURES = 5  # failures before any wait
FIRST_WAIT = timedelta(seconds=30)  # then 30 s, 1 min, 2 min, … up to MAX_WAIT
MAX_WAIT = timedelta(hours=1)
ADDRESS_MEMORY = timedelta(days=1)  # an address's failures are forgotten a day later


def wait_after(failures: int) -> timedelta | None:
    if failures < FREE_FAILURES:
        return None
    return min(FIRST_WAIT * (1 << (failures - FREE_FAILURES)), MAX_WAIT)


def remaining(state: SignInFailures | None, now: datetime) -> int:
    """Whole seconds until the key may try again (0: now)."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return 0
    return max(1, int((state.locked_until - now).total_seconds() + 0.999))


def one_more(state: SignInFailures | None, now: datetime) -> SignInFailures:
    """The key's state with one more failure (forgotten after ADDRESS_MEMORY)."""
    failures = 1
    if state is not None and now - state.last_failure_at < ADDRESS_MEMORY:
        failures = state.failures + 1
    wait = wait_after(failures)
    return SignInFailures(failures, now, now + wait if wait else None)


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (this one or a neighbour, for clocks a little apart) whose code
    `code` is, or None."""
    import pyotp

    typed = unicodedata.normalize("NFKC", code).strip()  # full-width digits from an IME
    if not (typed.isascii() and typed.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), typed.encode()):
            return step
    return None


def wait_text(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    when = (
        plural(seconds, "secondo", "secondi")
        if seconds < 60
        else plural(minutes, "minuto", "minuti")
    )
    return f"troppi tentativi non riusciti: riprovare tra {when}"
