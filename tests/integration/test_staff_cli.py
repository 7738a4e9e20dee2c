"""`credmail staff …` as the sysadmin runs it (password from standard input), on both
databases; the console accepts the account it created."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyotp
import pytest

from credmail.bootstrap import bootstrap
from credmail.config import load_settings
from tests.integration.test_cli import Cli, cli  # noqa: F401 - the cli fixture
from tests.support.wiring import IDENTITY

pytestmark = pytest.mark.integration

PASSWORD = "una password lunga\n"


def test_staff_add_list_totp_passwd_disable(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "keys" / "totp.key"
    monkeypatch.setenv("CREDMAIL_CONSOLE__TOTP_KEY_FILE", str(key_file))
    out = cli("staff", "add", "anna", "--role", "amministratore", stdin=PASSWORD)
    assert "staff member anna added (amministratore)" in out
    cli("staff", "add", "olga", "--role", "operatore", stdin=PASSWORD)
    again = cli("staff", "add", "olga", "--role", "operatore", stdin=PASSWORD, expect=1)
    assert "already exists" in again
    short = cli("staff", "add", "piero", "--role", "operatore", stdin="corta\n", expect=1)
    assert "at least 12" in short
    missing = cli("staff", "totp", "olga", expect=1)
    assert "console.totp_key_file: cannot use" in missing and "Traceback" not in missing
    key_file.parent.mkdir()
    uri = cli("staff", "totp", "olga").strip().splitlines()[-1]
    assert pyotp.parse_uri(uri).name == "olga"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    rows = json.loads(cli("staff", "list", "--json"))
    assert rows == [
        {"name": "anna", "role": "amministratore", "active": True, "totp": False},
        {"name": "olga", "role": "operatore", "active": True, "totp": True},
    ]
    assert "sessions are closed" in cli("staff", "passwd", "olga", stdin="un'altra password\n")
    cli("staff", "disable", "olga")
    listing = cli("staff", "list")
    assert "olga\toperatore\tdisabled\ttotp" in listing
    assert "no staff member named nessuno" in cli("staff", "disable", "nessuno", expect=1)


def test_totp_needs_the_key_file_setting(cli: Cli) -> None:  # noqa: F811
    cli("staff", "add", "olga", "--role", "operatore", stdin=PASSWORD)
    refused = cli("staff", "totp", "olga", expect=1)
    assert refused.strip().splitlines() == [
        "credmail: console.totp_key_file is not set: a key file is needed (created if missing)"
    ]


def test_a_password_from_standard_input_is_kept_as_typed(cli: Cli) -> None:  # noqa: F811
    cli("staff", "add", "olga", "--role", "operatore", stdin="  con spazi intorno  \n")
    settings = load_settings(None, environ={**IDENTITY, "CREDMAIL_DATABASE__URL": cli.db_url})
    app = bootstrap(settings)
    try:
        assert app.desks.staff.sign_in("olga", "  con spazi intorno  ", "", "10.0.0.1")
    finally:
        app.engine.dispose()
