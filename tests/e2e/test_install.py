"""The README's install, for real: a venv prefix from the checkout, the installed
`credmail`, the demo, and the systemd unit checked by systemd-analyze."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from credmail.samples import directory_csv
from tests.conftest import PG_URL

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
UNIT = (ROOT / "config" / "credmail.service").read_text()
WEB_UNIT = (ROOT / "config" / "credmail-web.service").read_text()
# the daemon, the reset page, the nightly backup (started by credmail-backup.timer)
UNITS = ["credmail.service", "credmail-web.service", "credmail-backup.service"]
PREFIX = "/opt/credmail"  # the README's and the unit's


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`python3 -m venv /opt/credmail && /opt/credmail/bin/pip install ".[postgres]"`,
    with /opt/credmail under a temporary root; yields (prefix, pip's verbose output)."""
    root = tmp_path_factory.mktemp("root")
    prefix = root / PREFIX.lstrip("/")
    assert run(sys.executable, "-m", "venv", prefix).returncode == 0
    pip = run(prefix / "bin" / "pip", "install", "-v", ".[postgres]", cwd=ROOT)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    doc = prefix / "share" / "doc" / "credmail" / "README.md"
    assert run("install", "-D", "-m", "0644", "README.md", doc, cwd=ROOT).returncode == 0
    yield prefix, pip.stdout + pip.stderr
    shutil.rmtree(root, ignore_errors=True)


def test_the_readme_installs_what_this_test_installs() -> None:
    assert f'python3 -m venv {PREFIX}\n{PREFIX}/bin/pip install ".[postgres]"' in README
    assert "README.md /opt/credmail/share/doc/credmail/README.md" in README
    assert f"ExecStart={PREFIX}/bin/credmail run" in UNIT
    assert f"{PREFIX}/bin/credmail" in README.split("printf", 1)[1].split("\n", 1)[0]
    assert "Documentation=file:///opt/credmail/share/doc/credmail/README.md" in UNIT
    assert f"ExecStart={PREFIX}/bin/credmail web" in WEB_UNIT
    assert "install -m 0644 config/credmail-web.service /etc/systemd/system/" in README


def test_install_declares_its_package_data(prefix: tuple[Path, str]) -> None:
    _, output = prefix
    assert "would be ignored" not in output


def test_the_build_uses_no_deprecated_metadata(prefix: tuple[Path, str]) -> None:
    _, output = prefix  # pip -v shows the build backend's warnings
    assert "SetuptoolsDeprecationWarning" not in output
    assert "is deprecated" not in output


def test_the_web_pages_are_installed(prefix: tuple[Path, str]) -> None:
    (web,) = prefix[0].glob("lib/python3*/site-packages/credmail/web")
    assert (web / "templates" / "base.html").is_file()
    assert (web / "templates" / "reset_confirm.html").is_file()
    assert (web / "static" / "credmail.css").is_file()


def test_installed_credmail_runs_and_checks_the_example_config(
    prefix: tuple[Path, str], tmp_path: Path
) -> None:
    credmail = prefix[0] / "bin" / "credmail"
    assert "check-config" in run(credmail, "--help").stdout
    # SQLite, the README's other database (the PostgreSQL one has its own test)
    env = installed_env(tmp_path, f"sqlite:///{tmp_path / 'credmail.db'}")
    checked = run(credmail, "check-config", env=env, cwd=tmp_path)
    assert (checked.returncode, checked.stdout) == (0, "configuration ok\n"), checked.stderr
    missing = run(credmail, "review", "list", env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert f"database sqlite:///{tmp_path / 'credmail.db'} does not exist" in missing.stderr


def test_demo_cleans_up_or_keeps_and_prints_a_command_that_works(
    prefix: tuple[Path, str], tmp_path: Path
) -> None:
    credmail = prefix[0] / "bin" / "credmail"
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}  # the prefix is not on PATH
    gone = run(credmail, "demo", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "{" not in gone.stdout  # no raw Python dict
    assert re.search(r"Run: 20 messages read; \d+ answered", gone.stdout)
    assert list(tmp_path.iterdir()) == []

    kept = run(credmail, "demo", "--keep", env=env)
    (folder,) = tmp_path.iterdir()
    assert f"The demo files are in {folder}" in kept.stdout
    command = next(line for line in kept.stdout.splitlines() if "review list" in line)
    assert str(credmail) in command
    listed = run("sh", "-c", command.strip(), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "richieste in attesa di revisione" in listed.stdout


# The README's database steps, on the suite's PostgreSQL (`sudo -u postgres` is its admin).
DATABASE_STEP = re.compile(r"^sudo -u postgres (create(?:user|db)) (.*?)\s*#", re.MULTILINE)


def install_block() -> str:
    return README.split("## Using it for real", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def school_database() -> Iterator[tuple[str, list[str]]]:
    """A name for the README's role and database, and the admin's connection options."""
    admin = make_url(PG_URL)
    name = f"{admin.database}_install"
    options = ["-h", admin.host or "127.0.0.1", "-p", str(admin.port or 5432)]
    options += ["-U", admin.username or "postgres"]
    drop = [f"DROP DATABASE IF EXISTS {name}", f"DROP ROLE IF EXISTS {name}"]
    for statement in drop:
        run("psql", *options, "-d", "postgres", "-c", statement)
    yield name, options
    for statement in drop:
        run("psql", *options, "-d", "postgres", "-c", statement)


def test_the_readme_makes_the_database_the_example_config_names(
    prefix: tuple[Path, str], school_database: tuple[str, list[str]], tmp_path: Path
) -> None:
    name, admin = school_database
    steps = DATABASE_STEP.findall(install_block())
    assert steps == [("createuser", "credmail"), ("createdb", "--owner credmail credmail")]
    for command, arguments in steps:
        made = run(command, *admin, *arguments.replace("credmail", name).split())
        assert made.returncode == 0, made.stderr
    example = (ROOT / "config" / "credmail.example.toml").read_text()
    (url,) = re.findall(r'^url = "(.*)"', example, re.MULTILINE)
    assert f'`[database] url = "{url}"`' in README
    readme_url = make_url(url)
    assert (readme_url.username, readme_url.database) == ("credmail", "credmail")
    server = make_url(PG_URL)  # the suite's server: on loopback, where the README has its socket
    ours = readme_url.set(username=name, database=name, host=server.host, port=server.port)
    env = installed_env(tmp_path, ours.set(query={}).render_as_string())
    credmail = prefix[0] / "bin" / "credmail"
    for command in (["check-config"], ["db", "upgrade"]):
        done = run(credmail, *command, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    people = tmp_path / "people.csv"
    people.write_bytes(directory_csv(date.today()))
    imported = run(credmail, "directory", "import", people, env=env, cwd=tmp_path)
    assert "added 11" in imported.stdout, imported.stderr
    status = run(credmail, "status", env=env, cwd=tmp_path)
    assert "review pending: 0" in status.stdout, status.stderr


def installed_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The example config, its secrets written, its database at `database_url`."""
    secret = tmp_path / "secret"
    secret.write_text("a-real-secret\n")
    key = tmp_path / "web-secret-key"  # as the README makes it: 64 hex digits, 0640
    key.write_text("0123456789abcdef" * 4 + "\n")
    key.chmod(0o640)
    return {
        "CREDMAIL_CONFIG": str(ROOT / "config" / "credmail.example.toml"),
        "CREDMAIL_MAILBOX__PASSWORD_FILE": str(secret),
        "CREDMAIL_SMTP__PASSWORD_FILE": str(secret),
        "CREDMAIL_WEB__SECRET_KEY_FILE": str(key),
        "CREDMAIL_DATABASE__URL": database_url,
    }


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_verifies_with_the_installed_paths(
    prefix: tuple[Path, str], tmp_path: Path, name: str
) -> None:
    unit = tmp_path / name
    unit.write_text((ROOT / "config" / name).read_text().replace(PREFIX, str(prefix[0])))
    verified = run("systemd-analyze", "verify", unit)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""


def test_the_backup_timer_starts_the_backup_each_night(
    prefix: tuple[Path, str], tmp_path: Path
) -> None:
    for name in ("credmail-backup.service", "credmail-backup.timer"):
        text = (ROOT / "config" / name).read_text().replace(PREFIX, str(prefix[0]))
        (tmp_path / name).write_text(text)
    verified = run("systemd-analyze", "verify", tmp_path / "credmail-backup.timer")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""
    timer = (ROOT / "config" / "credmail-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer
    service = (ROOT / "config" / "credmail-backup.service").read_text()
    assert f"ExecStart={PREFIX}/bin/credmail db backup --keep 14 /var/backups/credmail" in service
    assert "install -m 0644 config/credmail-backup.timer /etc/systemd/system/" in README
    assert "install -d -m 0700 -o credmail -g credmail /var/backups/credmail" in README


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_is_sandboxed(name: str) -> None:
    rated = run("systemd-analyze", "security", "--offline=true", ROOT / "config" / name)
    found = re.search(rf"Overall exposure level for {name}: (\d+\.\d+)", rated.stdout)
    assert found, rated.stdout + rated.stderr
    assert float(found.group(1)) <= 2.5
    for setting in ("UMask=0077", "StateDirectoryMode=0700", "User=credmail"):
        assert setting in (ROOT / "config" / name).read_text()


# One credmail per school on one machine: the template units, as an instance would run.
TEMPLATES = {
    "credmail@.service": ("run", "credmail-%i"),
    "credmail-web@.service": ("web", "credmail-web-%i"),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_template_units_verify_with_the_installed_paths(
    template: str, prefix: tuple[Path, str], tmp_path: Path
) -> None:
    text = (ROOT / "config" / template).read_text()
    command, identifier = TEMPLATES[template]
    assert f"ExecStart={PREFIX}/bin/credmail --config /etc/credmail/%i.toml {command}" in text
    for setting in (
        f"SyslogIdentifier={identifier}",
        "StateDirectory=credmail/%i",
        "WorkingDirectory=/var/lib/credmail/%i",
        "BindReadOnlyPaths=/etc/credmail/%i.toml -/etc/credmail/%i",
        "TemporaryFileSystem=/etc/credmail:ro",
    ):
        assert setting in text
    assert re.search(r"^RuntimeDirectory=credmail(-web)?/%i$", text, re.MULTILINE)
    unit = tmp_path / template.replace("@", "@school-a")
    unit.write_text(text.replace(PREFIX, str(prefix[0])))
    verified = run("systemd-analyze", "verify", unit)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_template_units_are_sandboxed_like_the_single_unit(
    template: str, tmp_path: Path
) -> None:
    unit = tmp_path / template.replace("@", "@school-a")
    unit.write_text((ROOT / "config" / template).read_text())
    rated = run("systemd-analyze", "security", "--offline=true", unit)
    found = re.search(
        rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d+)", rated.stdout
    )
    assert found, rated.stdout + rated.stderr
    assert float(found.group(1)) <= 2.5
    single = {line for line in UNIT.splitlines() if line and not line.startswith("#")}
    sandbox = {line for line in single if "=" in line and line.split("=")[0] in SANDBOX_KEYS}
    assert sandbox <= set(unit.read_text().splitlines())  # every hardening line of the single unit


SANDBOX_KEYS = {
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateUsers",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RemoveIPC",
    "KeyringMode",
    "DevicePolicy",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "UMask",
    "StateDirectoryMode",
    "User",
    "Group",
}
