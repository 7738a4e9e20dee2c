"""Migration 0009 on a database whose console accounts an older version made: a TOTP
secret stored in clear keeps working and is sealed at the next sign-in once the key file
exists; a password the console stored without its surrounding spaces still signs in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import MetaData, Table, insert

from credmail.adapters.db.engine import make_engine, upgrade
from credmail.config import load_settings
from credmail.service.desks import Actor
from credmail.service.desks.staff import SignInRefused
from tests.fakes import FakeClock
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SECRET = pyotp.random_base32()


def older_accounts(db_url: str) -> None:
    """olga (TOTP in clear; password typed on the console as "  con spazi intorno  ",
    stored trimmed) and anna, written as version 0008 wrote them."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0008_sex_origin")
        with engine.begin() as conn:
            staff = Table("staff", MetaData(), autoload_with=conn)
            row = dict(role="operatore", active=True, created_at=NOW, password_changed_at=NOW)
            conn.execute(
                insert(staff),
                [
                    dict(
                        name="olga",
                        password_hash=FAST.hash("con spazi intorno"),
                        totp_secret=SECRET,
                        **row,
                    ),
                    dict(
                        name="anna",
                        password_hash=FAST.hash("una password lunga"),
                        totp_secret=None,
                        **row,
                    ),
                ],
            )
    finally:
        engine.dispose()


def test_older_accounts_keep_working_and_their_secret_gets_sealed(
    db_url: str, tmp_path: Path
) -> None:
    older_accounts(db_url)
    key_file = tmp_path / "totp.key"
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_CONSOLE__TOTP_KEY_FILE": str(key_file),
    }
    clock = FakeClock(NOW + timedelta(days=30))
    app = make_app(load_settings(None, environ=env), clock=clock, directory=False)  # upgrades
    staff, totp = app.desks.staff, pyotp.TOTP(SECRET)

    def stored_secret() -> str:
        with app.uow() as uow:
            account = uow.staff.get("olga")
        assert account is not None
        return account.totp_secret or ""

    signed = staff.sign_in("olga", "  con spazi intorno  ", totp.at(clock()), "10.0.0.1")
    assert signed.name == "olga"
    assert stored_secret() == SECRET  # no key file yet: left as it was
    with pytest.raises(SignInRefused, match="non validi"):
        staff.sign_in("olga", "  con spazi intorno  ", "", "10.0.0.1")

    staff.totp("anna", Actor("root", "cli"))  # the first sealed secret makes the key file
    assert key_file.exists()
    clock.now += timedelta(seconds=30)
    assert staff.sign_in("olga", "con spazi intorno", totp.at(clock()), "10.0.0.1")
    sealed = stored_secret()
    assert sealed.startswith("sealed:") and SECRET not in sealed
    clock.now += timedelta(seconds=30)
    assert staff.sign_in("olga", "con spazi intorno", totp.at(clock()), "10.0.0.1")
