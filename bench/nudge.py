"""Issue 28.3: from a decision (an approval, a rejection with notice, a register task marked
done) to the SMTP server's acceptance of its mail, while `credmail run` runs: p50/p95 per
database and per `daemon.nudge`, the old way (off: the outbox tick, 30 s) and the new
ones (auto: the socket on SQLite, LISTEN/NOTIFY on PostgreSQL; poll: the due index read
every second, as behind PgBouncer) in the same run.

    python -m bench.nudge                     # 50 decisions per run, both databases
    python -m bench.nudge --decisions 12 --modes auto   # quicker

A real `credmail run` subprocess (an empty Maildir, its tick at the default 30 s) and a
real aiosmtpd in this process, which stamps each mail as it accepts it (DATA answered
250); the decisions are made here, in another process than the daemon, through the desks
the console and the CLI call, one every 0.2 to 1.0 s (seeded), without waiting for the
previous one's mail. The latency starts just before the desk is called, so it includes
the decision's own transaction. PostgreSQL is $PG_TEST_URL (its public schema is
dropped). Writes bench/results/nudge.md and .json, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.console_pages import _reset_postgres
from credmail.config import load_settings
from tests.support.daemon import Daemon, wait_for
from tests.support.decisions import Decision, people_csv, prepare
from tests.support.servers import RecordingHandler, SmtpServer
from tests.support.wiring import IDENTITY, make_app

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KINDS = ("approve", "reject", "done")
TICK = 30  # daemon.outbox_interval_seconds' default: what `off` waits for


class StampingHandler(RecordingHandler):
    """Keeps when each recipient's mail was accepted (monotonic clock, this process)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[str, float] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        for rcpt in envelope.rcpt_tos:
            self.accepted.setdefault(rcpt, time.monotonic())
        return answer


@dataclass
class Result:
    database: str
    nudge: str  # the setting, and what it resolved to
    decisions: int
    delivered: int
    p50_s: float
    p95_s: float
    max_s: float


def run(url: str, database: str, mode: str, decisions: int, seed: int) -> Result:
    smtp = SmtpServer(handler=StampingHandler()).start()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return _run(Path(tmp), url, database, mode, decisions, seed, smtp)
        finally:
            smtp.stop()


def _env(tmp: Path, url: str, mode: str, smtp: SmtpServer) -> dict[str, str]:
    maildir = tmp / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    return {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": url,
        "CREDMAIL_MAILBOX__KIND": "maildir",
        "CREDMAIL_MAILBOX__MAILDIR_PATH": str(maildir),
        "CREDMAIL_SMTP__HOST": "127.0.0.1",
        "CREDMAIL_SMTP__PORT": str(smtp.port),
        "CREDMAIL_SMTP__SECURITY": "none",
        "CREDMAIL_PRIVACY__LOG_KEY": "bench-log-key",
        "CREDMAIL_LOGGING__FORMAT": "json",
        "CREDMAIL_DAEMON__OUTBOX_INTERVAL_SECONDS": str(TICK),
        "CREDMAIL_DAEMON__NUDGE": mode,
        "CREDMAIL_DAEMON__NUDGE_POLL_SECONDS": "1",
    }


def _run(
    tmp: Path, url: str, database: str, mode: str, n: int, seed: int, smtp: SmtpServer
) -> Result:
    env = _env(tmp, url, mode, smtp)
    app = make_app(load_settings(None, environ=env), directory=False)
    daemon = Daemon(tmp, env)
    (tmp / "people.csv").write_bytes(people_csv(n))
    imported = daemon.cli("directory", "import", str(tmp / "people.csv"))
    assert imported.returncode == 0, imported.stderr
    todo = [prepare(app, i, KINDS[i % 3]) for i in range(n)]
    daemon.start()
    try:
        ready = "nudge.listening" if app.nudge_mode != "off" else "daemon.started"
        assert wait_for(lambda: daemon.events(ready), 60), daemon.text()
        time.sleep(1.0)  # the start's own drain is over
        started = _decide(todo, random.Random(seed))
        handler = smtp.handler
        assert isinstance(handler, StampingHandler)
        wait_for(lambda: len(handler.accepted) >= n, TICK + 60, step=0.05)
    finally:
        daemon.stop(timeout=30)
        app.close()
    latencies = sorted(
        handler.accepted[to] - t0 for to, t0 in started.items() if to in handler.accepted
    )
    return _result(database, f"{mode} ({app.nudge_mode})", n, latencies)


def _decide(todo: list[Decision], rng: random.Random) -> dict[str, float]:
    started: dict[str, float] = {}
    for decision in todo:
        time.sleep(rng.uniform(0.2, 1.0))
        started[decision.to] = time.monotonic()
        decision.make()
    return started


def _result(database: str, nudge: str, n: int, latencies: list[float]) -> Result:
    if not latencies:
        return Result(database, nudge, n, 0, 0.0, 0.0, 0.0)
    return Result(
        database,
        nudge,
        n,
        len(latencies),
        round(statistics.median(latencies), 3),
        round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        round(latencies[-1], 3),
    )


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=["off", "auto", "poll"])
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--stem", default="nudge", help="the result files' name")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before, uptime_before = os.getloadavg(), _uptime()
    results: list[Result] = []
    pg = os.environ.get("PG_TEST_URL")
    for mode in args.modes:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(
                run(f"sqlite:///{tmp}/bench.db", "sqlite", mode, args.decisions, args.seed)
            )
        if pg:
            _reset_postgres(pg)
            results.append(run(pg, "postgresql", mode, args.decisions, args.seed))
    uptimes = (uptime_before, _uptime())
    write(results, args.output, args.stem, (load_before[0], os.getloadavg()[0]), uptimes)
    return results


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "(no uptime command)"


def write(
    results: list[Result], out: Path, stem: str, load: tuple[float, float], uptimes: tuple[str, str]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {when} on {os.cpu_count()} cores ({platform.machine()}, "
        f"{platform.platform()}), Python {platform.python_version()}, load average "
        f"{load[0]:.2f} before and {load[1]:.2f} after. Decision (desk call, another process) "
        "to SMTP acceptance (aiosmtpd answered DATA), seconds, while `credmail run` runs "
        f"with its outbox tick at {TICK} s."
    )
    lines = [
        header,
        "",
        f"`uptime` before: `{uptimes[0]}`",
        "",
        f"`uptime` after: `{uptimes[1]}`",
        "",
        "| database | daemon.nudge (resolved) | decisions | delivered | p50 s | p95 s | max s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.database} | {r.nudge} | {r.decisions} | {r.delivered} | {r.p50_s} | "
        f"{r.p95_s} | {r.max_s} |"
        for r in results
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    document = {
        "measured": when,
        "load": load,
        "uptime": uptimes,
        "results": [asdict(r) for r in results],
    }
    (out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
