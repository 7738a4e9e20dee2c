"""Settings: strict keys, clear errors naming the key, env overrides, secret files."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

from credmail.config import ConfigError, load_settings, with_mail_secrets
from credmail.entrypoints.cli import main
from tests.support.wiring import IDENTITY


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "credmail.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ=IDENTITY if env is None else env)
    return str(caught.value)


def test_defaults_are_valid_with_the_schools_identity() -> None:
    settings = load_settings(None, environ=IDENTITY)
    assert settings.mailbox.folder == "INBOX"
    assert settings.mailbox.folders.answered == "Credenziali/Evase"
    assert settings.mailbox.process_existing is False
    assert settings.links.ttl_minutes == 60
    assert settings.database.url.startswith("sqlite:///")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, '[mailbox]\nhots = "x"\n') == "mailbox.hots: unknown key"


def test_unknown_section_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, "[mailboxes]\n") == "mailboxes: unknown key"


def test_bad_type_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, '[smtp]\nport = "abc"\n').startswith("smtp.port: ")


def test_plain_imap_is_refused_toward_a_remote_host(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[mailbox]\nhost = "imap.example.org"\nsecurity = "none"\n')
    assert message.startswith("mailbox: security = 'none' is allowed only toward a loopback")


def test_plain_imap_is_allowed_on_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "127.0.0.1"\nsecurity = "none"\n')
    assert load_settings(path, environ=IDENTITY).mailbox.effective_port == 143


def test_placeholder_secret_is_refused(tmp_path: Path) -> None:
    assert "placeholder" in error_for(tmp_path, '[mailbox]\npassword = "changeme"\n')


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cr3t-value\n")
    path = write(tmp_path, f'[mailbox]\npassword_file = "{secret}"\n')
    settings = load_settings(path, environ=IDENTITY)
    assert settings.mailbox.password is None  # read only by commands that connect
    assert with_mail_secrets(settings).mailbox.password == "s3cr3t-value"


def test_missing_secret_file_is_named_when_needed(tmp_path: Path) -> None:
    # Behaviour changed on purpose (issue 10.7): a missing secret is an error only for
    # commands that connect, so the review commands work without the mail secrets.
    path = write(tmp_path, f'[smtp]\npassword_file = "{tmp_path}/nope"\n')
    settings = load_settings(path, environ=IDENTITY)
    with pytest.raises(ConfigError, match=r"^smtp\.password_file: cannot read"):
        with_mail_secrets(settings)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "imap.example.org"\n')
    env = {
        **IDENTITY,
        "CREDMAIL_MAILBOX__HOST": "imap2.example.org",
        "CREDMAIL_LINKS__TTL_MINUTES": "30",
    }
    settings = load_settings(path, environ=env)
    assert settings.mailbox.host == "imap2.example.org"
    assert settings.links.ttl_minutes == 30


def test_environment_lists(tmp_path: Path) -> None:
    env = {**IDENTITY, "CREDMAIL_CLASSIFY__ADULT_PHRASES": '["password registro"]'}
    assert load_settings(None, environ=env).classify.adult_phrases == ("password registro",)


def test_unknown_environment_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^mailbox\.hots: unknown key$"):
        load_settings(None, environ={**IDENTITY, "CREDMAIL_MAILBOX__HOTS": "x"})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    assert "invalid TOML" in error_for(tmp_path, "[mailbox\n")


def test_link_base_url_must_be_https(tmp_path: Path) -> None:
    env = {k: v for k, v in IDENTITY.items() if "BASE_URL" not in k}
    message = error_for(tmp_path, '[links]\nbase_url = "http://registro.example.org"\n', env)
    assert message == "links: base_url must start with https://"


def test_cli_exits_2_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "127.0.0.1"\nport = 1\nbogus = 1\n')
    monkeypatch.delenv("CREDMAIL_CONFIG", raising=False)
    assert main(["--config", str(path), "run", "--once"]) == 2
    assert "mailbox.bogus: unknown key" in capsys.readouterr().err


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "config" / "credmail.example.toml"
    secret = tmp_path / "secret"
    secret.write_text("real-secret\n")
    key = tmp_path / "web-secret-key"
    key.write_text("0123456789abcdef" * 4 + "\n")
    key.chmod(0o640)
    env = {
        "CREDMAIL_MAILBOX__PASSWORD_FILE": str(secret),
        "CREDMAIL_SMTP__PASSWORD_FILE": str(secret),
        "CREDMAIL_WEB__SECRET_KEY_FILE": str(key),  # /etc/credmail/web-secret-key, installed
    }
    settings = with_mail_secrets(load_settings(example, environ=env))
    assert settings.mailbox.security == "tls"
    assert settings.smtp.password == "real-secret"


def test_the_schools_identity_has_no_default() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={})
    message = str(caught.value)
    for key in ("smtp.from_address", "links.base_url", "replies.school_name"):
        assert key.split(".")[1] in message
    assert "Stanga" not in message


@pytest.mark.parametrize("target", ["INBOX", "inbox", "INBOX/"])
def test_a_target_folder_equal_to_the_watched_folder_is_refused(
    tmp_path: Path, target: str
) -> None:
    message = error_for(tmp_path, f'[mailbox.folders]\nanswered = "{target}"\n')
    assert message.startswith("mailbox: folders.answered = ")
    assert "is the watched folder" in message


def test_a_bad_timezone_is_one_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[daemon]\ntimezone = "Europe/Roma"\n')
    assert message.startswith("daemon: timezone: unknown time zone 'Europe/Roma'")


def test_cli_bad_timezone_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[daemon]\ntimezone = "Europe/Roma"\n')
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("credmail: config error: daemon: timezone: unknown time zone")
    assert "Traceback" not in err


def test_an_empty_environment_variable_is_unset(tmp_path: Path) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text("from-the-file\n")
    path = write(tmp_path, f'[mailbox]\npassword_file = "{secret}"\n')
    env = {**IDENTITY, "CREDMAIL_MAILBOX__PASSWORD_FILE": "", "CREDMAIL_MAILBOX__HOST": ""}
    settings = with_mail_secrets(load_settings(path, environ=env))
    assert settings.mailbox.password == "from-the-file"
    assert settings.mailbox.host == "localhost"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg//credmail:hunter2@db/credmail", "url: not a database URL; "),
        ("postgres://credmail:hunter2@db/credmail", "not postgres://; "),
        ("mysql://credmail:hunter2@db/credmail", "not mysql://; "),
    ],
)
def test_a_database_url_credmail_cannot_use_is_one_line_naming_the_key(
    tmp_path: Path, url: str, expected: str
) -> None:
    message = error_for(tmp_path, f'[database]\nurl = "{url}"\n')
    assert message.startswith("database: url: ") and expected in message
    assert "hunter2" not in message  # the URL may hold the password: never repeated


@pytest.mark.parametrize("command", [["check-config"], ["db", "upgrade"], ["status"]])
def test_an_unparseable_database_url_stops_every_command_before_it_connects(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CREDMAIL_DATABASE__URL", "postgres ql://credmail@db/credmail")
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("credmail: config error: database: url: not a database URL")
    assert len(err.splitlines()) == 1


def test_importing_the_settings_evaluates_none(tmp_path: Path) -> None:
    """With no zone database at all, the module imports and the error names the key."""
    code = (
        "import sys; sys.modules['tzdata'] = None\n"
        "from credmail.config import ConfigError, load_settings\n"
        "try:\n"
        "    load_settings(None, environ=dict(arg.split('=', 1) for arg in sys.argv[1:]))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONTZPATH": str(tmp_path)}  # an empty zone path
    done = subprocess.run(
        [sys.executable, "-c", code, *(f"{k}={v}" for k, v in IDENTITY.items())],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.stderr == ""
    assert done.stdout.startswith("daemon: timezone: no time zone database to look 'Europe/Rome'")


def test_the_zone_database_comes_with_credmail(tmp_path: Path) -> None:
    """Europe/Rome resolves on a system without one: credmail depends on tzdata."""
    assert any(req.startswith("tzdata") for req in requires("credmail") or [])
    code = "from zoneinfo import ZoneInfo; print(ZoneInfo('Europe/Rome'))"
    env = {"PATH": os.environ["PATH"], "PYTHONTZPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert (done.returncode, done.stdout) == (0, "Europe/Rome\n"), done.stderr
