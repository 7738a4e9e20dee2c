"""`credmail staff …` as the sysadmin runs it (password from standard input), on both
databases; the console accepts the account it created."""

from __future__ import annotations

import json

import pyotp
import pytest

from tests.integration.test_cli import Cli, cli  # noqa: F401 - the cli fixture

pytestmark = pytest.mark.integration

PASSWORD = "una password lunga\n"


def test_staff_add_list_totp_passwd_disable(cli: Cli) -> None:  # noqa: F811
    out = cli("staff", "add", "anna", "--role", "amministratore", stdin=PASSWORD)
    assert "staff member anna added (amministratore)" in out
    cli("staff", "add", "olga", "--role", "operatore", stdin=PASSWORD)
    again = cli("staff", "add", "olga", "--role", "operatore", stdin=PASSWORD, expect=1)
    assert "already exists" in again
    short = cli("staff", "add", "piero", "--role", "operatore", stdin="corta\n", expect=1)
    assert "at least 12" in short
    uri = cli("staff", "totp", "olga").strip().splitlines()[-1]
    assert pyotp.parse_uri(uri).name == "olga"
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
