"""[web]: trusted proxy ranges and the forms' secret key file; every error one line
naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.config import ConfigError, Settings, load_settings
from tests.support.wiring import IDENTITY


def load(**web: str) -> Settings:
    env = {**IDENTITY, **{f"CREDMAIL_WEB__{k.upper()}": v for k, v in web.items()}}
    return load_settings(None, environ=env)


def error(**web: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**web)
    return str(caught.value)


@pytest.mark.parametrize("catch_all", ["0.0.0.0/0", "::/0", "0.0.0.0/1"])
def test_a_catch_all_trusted_range_is_a_config_error(catch_all: str) -> None:
    message = error(trusted_proxies=f'["127.0.0.1", "{catch_all}"]')
    assert message.startswith(f"web.trusted_proxies: '{catch_all}' is wider than /")
    assert "\n" not in message


def test_the_proxies_of_a_cluster_are_accepted() -> None:
    assert load(trusted_proxies='["10.0.0.0/8"]').web.trusted_proxies == ("10.0.0.0/8",)


def key_file(tmp_path: Path, mode: int, text: str = "k" * 64) -> Path:
    path = tmp_path / "web-secret-key"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_the_secret_key_comes_from_its_file(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o640)
    assert load(secret_key_file=str(path)).web.secret_key == "k" * 64


def test_a_world_readable_secret_key_file_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o644)
    assert error(secret_key_file=str(path)) == (
        f"web.secret_key_file: {path} is readable by every user; chmod o-rwx it"
    )


def test_a_short_or_missing_secret_key_is_refused(tmp_path: Path) -> None:
    assert "at least 32 characters" in error(secret_key_file=str(key_file(tmp_path, 0o600, "k")))
    assert "cannot read" in error(secret_key_file=str(tmp_path / "nowhere"))
