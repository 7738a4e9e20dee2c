"""Run `credmail run` as a subprocess, as systemd would, and read what it logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from credmail.samples import directory_csv
from tests.support.wiring import write_config


def wait_for(condition: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class Daemon:
    def __init__(
        self, tmp_path: Path, settings: dict[str, str], extra_env: dict[str, str] | None = None
    ) -> None:
        self.log_path = tmp_path / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
        env["CREDMAIL_CONFIG"] = str(write_config(tmp_path / "credmail.toml", settings))
        self.env = {**env, **(extra_env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.tmp_path = tmp_path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "credmail", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def import_directory(self) -> None:
        path = self.tmp_path / "directory.csv"
        path.write_bytes(directory_csv(date.today()))
        assert self.cli("directory", "import", str(path)).returncode == 0

    def start(self) -> Daemon:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "credmail", "run"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, timeout: float = 10) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    found.append(event)
        return found
