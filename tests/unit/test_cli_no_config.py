"""Before any database: without configuration the CLI says so (instead of naming the first
missing key), `--version`, and a PostgreSQL URL where the driver is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from credmail.entrypoints.cli import main
from tests.support.wiring import IDENTITY


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


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"credmail {version('credmail')}\n"


# The console script, in an interpreter where the PostgreSQL driver is not installed.
WITHOUT_PSYCOPG = (
    "import sys\n"
    "sys.modules['psycopg'] = None  # as if `pip install .` without the postgres extra\n"
    "from credmail.entrypoints.cli import run\n"
    "sys.exit(run())\n"
)


@pytest.mark.parametrize("command", [["check-config"], ["status"], ["db", "upgrade"]])
def test_postgresql_without_its_driver_names_the_extra(command: list[str]) -> None:
    env = {
        "PATH": os.environ["PATH"],
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": "postgresql+psycopg://credmail@/credmail?host=/run/postgresql",
    }
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, *command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith("credmail: config error: database: url: PostgreSQL needs the driver")
    pip = Path(sys.prefix) / "bin" / "pip"
    assert line.endswith(f"postgres extra, from the checkout: {pip} install '.[postgres]'")
