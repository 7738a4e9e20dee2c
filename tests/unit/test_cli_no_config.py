"""Without any configuration the CLI says so, instead of naming the first missing key."""

from __future__ import annotations

import os

import pytest

from credmail.entrypoints.cli import main


@pytest.fixture(autouse=True)
def no_credmail_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)


def test_no_config_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "list"]) == 2
    err = capsys.readouterr().err
    assert "no configuration file: give --config FILE or set CREDMAIL_CONFIG" in err
    assert "from_address" not in err


def test_settings_from_the_environment_alone_still_count(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDMAIL_SMTP__HOST", "smtp.example.org")
    assert main(["review", "list"]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "no configuration file" not in err
