"""credmail's benchmarks, side by side with the floor, on real Dovecot, aiosmtpd and databases.

    python -m bench.run                       # full: N = 1,000 and 10,000, SQLite and PostgreSQL
    python -m bench.run --smoke               # N = 200, SQLite, no latency minute (CI)

Writes bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.mix import PEOPLE, STAFF, directory_csv, mailbox
from tests.support.servers import IMAP_PASSWORD, IMAP_USER, Dovecot, SmtpServer
from tests.support.wiring import server_env, write_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class TimedHandler:
    """aiosmtpd handler recording when each reply arrived and what it answers."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        msg = message_from_bytes(head + b"\r\n\r\n", policy=policy.default)
        with self.lock:
            self.arrivals.append((time.time(), str(msg.get("In-Reply-To", "")).strip()))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


@dataclass
class Run:
    database: str
    messages: int
    requests: int
    credmail_seconds: float
    credmail_msgs_per_s: float
    floor_seconds: float
    floor_msgs_per_s: float
    ratio: float
    credmail_peak_rss_mb: float
    decided: int
    replies_sent: int
    credmail_cpu_seconds: float = 0.0  # user + system: what the load of the machine hides
    floor_cpu_seconds: float = 0.0


@dataclass
class Latency:
    """From the APPEND's completion to the reply's DATA at the SMTP server (end to end),
    split at the moment the server's IDLE announcement reached credmail: before it the
    server's notification delay, after it credmail's own share."""

    database: str
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    own_p50_ms: float = 0.0
    own_p95_ms: float = 0.0
    own_p99_ms: float = 0.0
    own_max_ms: float = 0.0
    server_p50_ms: float = 0.0
    server_p95_ms: float = 0.0
    server_p99_ms: float = 0.0


@dataclass
class Report:
    machine: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)


class Bench:
    def __init__(self, workdir: Path, near_miss: str | None = None) -> None:
        self.workdir = workdir
        self.near_miss = near_miss  # [classify] near_miss for credmail (None: the default)
        self.dovecot = Dovecot().start()
        self.handler = TimedHandler()
        self.smtp = SmtpServer(handler=self.handler).start()  # type: ignore[arg-type]

    def close(self) -> None:
        self.smtp.stop()
        self.dovecot.cleanup()

    # -- setup ----------------------------------------------------------------------

    def database(self, kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self.workdir / f'{name}.db'}"
        return empty_postgres()

    def env(self, db_url: str, **extra: str) -> dict[str, str]:
        if self.near_miss is not None:
            extra["classify__near_miss"] = self.near_miss
        settings = server_env(
            self.dovecot,
            self.smtp,
            db_url,
            limits__global_replies_per_hour="10000000",
            logging__format="json",
            **extra,
        )
        config = write_config(self.workdir / "credmail.toml", settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
        return {**env, "CREDMAIL_CONFIG": str(config)}

    def credmail(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "credmail", *args],
            env=env,
            text=True,
            capture_output=True,
            check=True,
        )

    def fill(self, messages: list[bytes]) -> None:
        self.dovecot.reset_mailbox()
        with self.dovecot.client() as client:
            for start in range(0, len(messages), 500):
                client.multiappend("INBOX", messages[start : start + 500])

    # -- throughput and memory --------------------------------------------------------

    def throughput(self, kind: str, total: int) -> Run:
        messages = mailbox(total)
        requests = sum(1 for i in range(total) if i % 2)
        db_url = self.database(kind, f"throughput-{total}")
        env = self.env(db_url, mailbox__process_existing="true", mailbox__batch_size="200")
        directory = self.workdir / "people.csv"
        directory.write_bytes(directory_csv(date.today()))
        self.credmail(env, "directory", "import", str(directory))
        self.fill(messages)
        before = self.handler.count()
        seconds, rss_kb, cpu = timed(
            [sys.executable, "-m", "credmail", "run", "--once"],
            env,
            self.workdir / f"run-{kind}-{total}.log",
        )
        sent = self.handler.count() - before
        decided = count_decisions(db_url)
        self.fill(messages)
        before = self.handler.count()
        floor_seconds, _, floor_cpu = timed(
            [
                sys.executable,
                str(ROOT / "bench" / "floor.py"),
                str(self.dovecot.port),
                str(self.smtp.port),
                IMAP_USER,
                IMAP_PASSWORD,
            ],
            env,
            self.workdir / "floor.log",
        )
        assert self.handler.count() - before == requests, "the floor missed requests"
        return Run(
            kind,
            total,
            requests,
            round(seconds, 2),
            round(total / seconds, 1),
            round(floor_seconds, 2),
            round(total / floor_seconds, 1),
            round(floor_seconds / seconds, 3),
            round(rss_kb / 1024, 1),
            decided,
            sent,
            round(cpu, 2),
            round(floor_cpu, 2),
        )

    # -- latency ----------------------------------------------------------------------

    def latency(self, kind: str, one_by_one: int, rate: float, seconds: float) -> Latency:
        db_url = self.database(kind, "latency")
        env = self.env(db_url, mailbox__process_existing="false", logging__level="debug")
        directory = self.workdir / "people.csv"
        directory.write_bytes(directory_csv(date.today()))
        self.credmail(env, "directory", "import", str(directory))
        self.dovecot.reset_mailbox()
        with self.handler.lock:  # a run's replies must not answer the next run's requests
            self.handler.arrivals.clear()
        log_path = self.workdir / f"latency-{kind}.log"
        log = log_path.open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "credmail", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        sent: dict[str, tuple[float, float]] = {}  # Message-ID: APPEND started, completed
        try:
            # mail that comes before the first start's checkpoint is skipped backlog
            wait_until(lambda: b"mailbox.first_start" in log_path.read_bytes(), 60)
            time.sleep(0.5)  # idling
            with self.dovecot.client() as client:
                number = 0
                for _ in range(one_by_one):
                    number = self._append(client, number, sent)
                    wait_until(lambda: self._answered(sent) == len(sent), 30)
                start = time.monotonic()
                while time.monotonic() - start < seconds:
                    number = self._append(client, number, sent)
                    time.sleep(
                        max(0.0, start + number_after(number, one_by_one) / rate - time.monotonic())
                    )
            wait_until(lambda: self._answered(sent) == len(sent), 60)
        finally:
            daemon.terminate()
            daemon.wait(timeout=20)
            log.close()
        arrivals = {mid: at for at, mid in self.handler.arrivals}
        assert all(mid in arrivals for mid in sent), "requests unanswered"
        notices = sorted(new_mail_notices(log_path))
        delays, own, server = [], [], []
        for mid, (started, appended) in sent.items():
            arrived = arrivals[mid]
            # the first announcement after the APPEND began; none before the reply: a
            # sync already running found the message (no notification delay)
            noticed = next((at for at in notices if at >= started), arrived)
            noticed = appended if noticed > arrived else max(noticed, appended)
            delays.append((arrived - appended) * 1000)
            own.append((arrived - noticed) * 1000)
            server.append((noticed - appended) * 1000)
        delays.sort()
        own.sort()
        server.sort()
        return Latency(
            kind,
            len(delays),
            round(percentile(delays, 50), 1),
            round(percentile(delays, 95), 1),
            round(percentile(delays, 99), 1),
            round(delays[-1], 1),
            round(percentile(own, 50), 1),
            round(percentile(own, 95), 1),
            round(percentile(own, 99), 1),
            round(own[-1], 1),
            round(percentile(server, 50), 1),
            round(percentile(server, 95), 1),
            round(percentile(server, 99), 1),
        )

    def _append(self, client: Any, number: int, sent: dict[str, tuple[float, float]]) -> int:
        mid = f"<latency.{number}.{time.time_ns()}@bench.example.org>"
        raw = adult_request(number, mid)
        started = time.time()
        client.append("INBOX", raw)
        sent[mid] = (started, time.time())
        return number + 1

    def _answered(self, sent: dict[str, tuple[float, float]]) -> int:
        replied = {mid for _at, mid in self.handler.arrivals}
        return sum(1 for mid in sent if mid in replied)


def empty_postgres() -> str:
    """$PG_TEST_URL with its public schema emptied."""
    url = os.environ.get("PG_TEST_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def adult_request(number: int, message_id: str) -> bytes:
    """One adult request from the directory's person `number` (a sender not used before, so
    no abuse limit applies), answered with a link."""
    sender = (
        f"docente{number}@istitutostanga.example.org"
        if number < STAFF
        else (f"genitore{number - STAFF}@famiglie.example.org")
    )
    return _with_message_id(message_id, sender)


def _with_message_id(message_id: str, sender: str) -> bytes:
    from email.message import EmailMessage

    from credmail.samples import AUTHSERV_ID

    msg = EmailMessage()
    msg["Authentication-Results"] = (
        f"{AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
    )
    msg["From"] = sender
    msg["To"] = "segreteria@istitutostanga.edu.it"
    msg["Subject"] = "Richiesta credenziali"
    msg["Message-ID"] = message_id
    msg.set_content("Buongiorno, non ho SPID.")
    return msg.as_bytes()


def new_mail_notices(log: Path) -> list[float]:
    """When the daemon received each IDLE announcement (its `imap.new_mail` debug events)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if '"imap.new_mail"' in line:
            found.append(float(json.loads(line)["at"]))
    return found


def number_after(number: int, offset: int) -> int:
    return number - offset


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)


def percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, int, float]:
    """Wall time, peak RSS (KiB) and CPU seconds (user + system) of one child process."""
    with log.open("wb") as out:
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command[2:4]} failed; see {log}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def count_decisions(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        decided = int(
            conn.scalar(text("SELECT COUNT(*) FROM ledger WHERE outcome != 'ignored'")) or 0
        )
        unsent = int(conn.scalar(text("SELECT COUNT(*) FROM outbox WHERE status != 'sent'")) or 0)
    engine.dispose()
    assert unsent == 0, f"{unsent} replies not delivered"
    return decided


def machine() -> dict[str, str]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "dovecot": dovecot.strip(),
        "people": str(PEOPLE),
    }


def markdown(report: Report) -> str:
    m = report.machine
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
        f"Dovecot {m['dovecot']}, directory of {m['people']} people.",
        "",
        "| database | messages | requests | credmail s | credmail msg/s | floor s | "
        "floor msg/s | credmail / floor | peak RSS MB | credmail CPU s | floor CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.runs:
        lines.append(
            f"| {r.database} | {r.messages:,} | {r.requests:,} | {r.credmail_seconds} | "
            f"{r.credmail_msgs_per_s} | {r.floor_seconds} | {r.floor_msgs_per_s} | "
            f"{r.ratio:.0%} | {r.credmail_peak_rss_mb} | {r.credmail_cpu_seconds} | "
            f"{r.floor_cpu_seconds} |"
        )
    if report.latency:
        lines += [
            "",
            "| database | requests | end to end p50 / p95 / p99 / max ms | "
            "server's notification delay p50 / p95 / p99 ms | "
            "credmail's own share p50 / p95 / p99 / max ms |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for lat in report.latency:
            lines.append(
                f"| {lat.database} | {lat.samples} | {lat.p50_ms} / {lat.p95_ms} / "
                f"{lat.p99_ms} / {lat.max_ms} | {lat.server_p50_ms} / {lat.server_p95_ms} / "
                f"{lat.server_p99_ms} | {lat.own_p50_ms} / {lat.own_p95_ms} / "
                f"{lat.own_p99_ms} / {lat.own_max_ms} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="N = 200, SQLite, short latency")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--skip-throughput", action="store_true", help="latency only")
    parser.add_argument("--skip-latency", action="store_true", help="throughput only")
    parser.add_argument("--keep", type=Path, help="keep the work folder (daemon logs) here")
    parser.add_argument(
        "--near-miss",
        choices=["ignore", "flag", "guide"],
        help="[classify] near_miss (default: credmail's own, flag: ordinary mail is read once)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.databases, args.latency_seconds = [200], ["sqlite"], 2
    compile_credmail()
    report = Report(machine())
    with tempfile.TemporaryDirectory(prefix="credmail-bench-") as workdir:
        bench = Bench(args.keep or Path(workdir), args.near_miss)
        try:
            for kind in args.databases:
                for size in [] if args.skip_throughput else args.sizes:
                    report.runs.append(bench.throughput(kind, size))
                    print(report.runs[-1], flush=True)
                if args.skip_latency:
                    continue
                report.latency.append(
                    bench.latency(kind, 20 if not args.smoke else 3, 10.0, args.latency_seconds)
                )
                print(report.latency[-1], flush=True)
        finally:
            bench.close()
    name = "smoke" if args.smoke else "latest"
    write_results(args.output, name, asdict(report), markdown(report))
    return report


def compile_credmail() -> None:
    """credmail's modules compiled to bytecode first, as `pip install` does: a checkout
    under PYTHONDONTWRITEBYTECODE would otherwise compile them again at every start
    (about 70 ms a start on this machine), which no installed credmail pays."""
    spec = importlib.util.find_spec("credmail")
    assert spec is not None and spec.origin is not None
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def write_results(output: Path, name: str, data: dict[str, Any], text: str) -> None:
    """`<name>.json` and `<name>.md` in `output`; the markdown is printed too."""
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (output / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
