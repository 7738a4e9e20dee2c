"""`credmail status --all CONFIG_DIR`: one line per school, non-zero when any is unhealthy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from credmail.entrypoints.cli import main
from credmail.samples import SAMPLES, directory_csv
from tests.conftest import PG_URL
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet_schema() -> Iterator[str]:
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS status_a CASCADE"))
    yield "status_a"
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS status_a CASCADE"))
    engine.dispose()


def test_one_line_per_school_and_failure_when_any_is_unhealthy(
    dovecot: Dovecot,
    smtp: SmtpServer,
    fleet_schema: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CREDMAIL_CONFIG", raising=False)
    configs = tmp_path / "etc"
    configs.mkdir()
    a = write_config(
        configs / "school-a.toml",
        server_env(dovecot, smtp, PG_URL, database__schema=fleet_schema),
    )
    write_config(  # never synced: its database does not exist yet
        configs / "school-b.toml",
        server_env(dovecot, smtp, f"sqlite:///{tmp_path / 'b.db'}", replies__school_name="Liceo B"),
    )
    (configs / "school-c.toml").write_text("[mailbox]\nhots = 'typo'\n")
    (configs / "notes.txt").write_text("not a school\n")

    people = tmp_path / "people.csv"
    people.write_bytes(directory_csv(date.today()))
    assert main(["--config", str(a), "directory", "import", str(people)]) == 0
    dovecot.append(next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes())
    assert main(["--config", str(a), "run", "--once"]) == 0
    capsys.readouterr()

    assert main(["status", "--all", str(configs)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["school-a", "school-b", "school-c"]
    assert lines[0].split()[1] == "ok"
    assert "review pending 0" in lines[0] and "sign-in password" in lines[0]
    assert "delivery ok" in lines[0] and "1 sent" in lines[0]
    assert "FAILED  database does not exist" in lines[1]
    assert "FAILED  config error" in lines[2] and "hots" in lines[2]
    assert not (tmp_path / "b.db").exists()  # status never creates a school's database

    assert main(["status", "--all", str(configs), "--json"]) == 1
    schools = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert schools["school-a"]["healthy"] is True
    assert schools["school-a"]["school"] == "Istituto Stanga"
    assert schools["school-a"]["outbox"] == {"sent": 1}
    assert schools["school-b"]["healthy"] is False

    for broken in ("school-b.toml", "school-c.toml"):
        (configs / broken).unlink()
    assert main(["status", "--all", str(configs)]) == 0
    assert capsys.readouterr().out.startswith("school-a  ok")


def test_an_empty_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--all", str(tmp_path)]) == 2
    assert f"no school configuration (*.toml) in {tmp_path}" in capsys.readouterr().err
