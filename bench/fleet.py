"""The fleet benchmark: many schools' daemons on this machine, one Dovecot (a mailbox per
school), one PostgreSQL (a schema per school) behind one PgBouncer in transaction mode.

    python -m bench.fleet                   # 50 schools, 60 s idle, bursts of 10 per school
    python -m bench.fleet --smoke           # 3 schools, 2 s idle, bursts of 2 (CI)

Reports total and per-instance RSS, the idle fleet's CPU, a burst of requests to every school
within about a second (mail-to-reply p50/p95/p99), then the same burst while some daemons are
SIGKILLed and restarted as systemd would: every request answered, none twice.
Writes bench/results/fleet.json and fleet.md (smoke: smoke-fleet.*).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from imapclient import IMAPClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.mix import directory_csv
from bench.run import (
    RESULTS,
    TimedHandler,
    adult_request,
    machine,
    percentile,
    wait_until,
    write_results,
)
from tests.support.servers import IMAP_PASSWORD, Dovecot, PgBouncer, SmtpServer
from tests.support.wiring import server_env, write_config

PG_URL = os.environ.get("PG_TEST_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOVECOT_LIMITS = "default_process_limit = 1000\ndefault_client_limit = 4000\n"
TARGETS = {"idle_cpu_percent_of_core": 5.0, "burst_p99_ms": 3000.0, "rss_mb_per_instance": 100.0}


@dataclass
class Burst:
    requests: int
    seconds_to_append: float
    answered: int
    lost: int
    answered_twice: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    killed: list[str] = field(default_factory=list)
    restart_delay_seconds: float = 0.0
    # CPU the daemons used from the first append until every reply was in (all cores)
    fleet_cpu_seconds: float = 0.0


@dataclass
class FleetReport:
    machine: dict[str, str]
    schools: int
    pgbouncer_pool: int
    rss_mb_total: float = 0.0
    pss_mb_total: float = 0.0  # shared pages (the interpreter, libraries) counted once
    rss_mb_per_instance_median: float = 0.0
    rss_mb_per_instance_max: float = 0.0
    peak_rss_mb_per_instance_max: float = 0.0
    idle_seconds: float = 0.0
    idle_cpu_percent_of_core: float = 0.0
    bursts: list[Burst] = field(default_factory=list)
    # the machine's 1-minute load average when each phase began (others' work counts too)
    load_average: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=lambda: dict(TARGETS))


class Fleet:
    def __init__(self, workdir: Path, schools: int, pool: int) -> None:
        self.workdir = workdir
        self.names = [f"school_{n:02d}" for n in range(1, schools + 1)]
        self.database = f"{make_url(PG_URL).database}_fleet_{os.getpid()}"
        self.handler = TimedHandler()
        # one IMAP process per connection: room for every daemon plus the burst's clients
        self.dovecot = Dovecot(extra_conf=DOVECOT_LIMITS).start()
        self.smtp = SmtpServer(handler=self.handler).start()  # type: ignore[arg-type]
        self._create_database()
        self.pgbouncer = PgBouncer(PG_URL, pool_size=pool).start()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        self.configs: dict[str, Path] = {}
        self.cpu_of_killed = 0.0

    # -- setup ----------------------------------------------------------------------

    def _admin(self) -> Any:
        admin = make_url(PG_URL).set(database="postgres")
        return create_engine(admin, isolation_level="AUTOCOMMIT")

    def _create_database(self) -> None:
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}"'))
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        engine.dispose()

    def _drop_database(self) -> None:
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        engine.dispose()

    def setup(self) -> None:
        """A mailbox, a configuration and a schema (with the directory) per school."""
        self.dovecot.add_users(self.names)
        people = self.workdir / "people.csv"
        people.write_bytes(directory_csv(date.today()))
        url = self.pgbouncer.url(self.database)
        for name in self.names:
            env = server_env(
                self.dovecot,
                self.smtp,
                url,
                mailbox__username=name,
                mailbox__process_existing="false",
                database__schema=name,
                database__pool_size="1",
                database__prepared_statements="false",
                limits__global_replies_per_hour="10000000",
                logging__format="json",
            )
            self.configs[name] = write_config(self.workdir / f"{name}.toml", env)

        def prepare(name: str) -> None:
            self.credmail(name, "directory", "import", str(people))

        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(prepare, self.names))

    def credmail(self, name: str, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "credmail", "--config", str(self.configs[name]), *args],
            env=_env(),
            capture_output=True,
            check=True,
        )

    # -- the daemons ------------------------------------------------------------------

    def start(self, name: str) -> None:
        log = self.logs.get(name) or (self.workdir / f"{name}.log").open("ab")
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "credmail", "--config", str(self.configs[name]), "run"],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def connections(self, name: str) -> int:
        return (self.workdir / f"{name}.log").read_bytes().count(b'"imap.connected"')

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)
        wait_until(lambda: all(self.connections(n) for n in self.names), 300)
        idle = [n for n in self.names if not self.connections(n)]
        assert not idle, f"never connected: {idle}"

    def kill(self, name: str) -> None:
        process = self.processes[name]
        self.cpu_of_killed += _cpu(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs.values():
            log.close()

    def rss_mb(self, key: str = "VmRSS") -> list[float]:
        return [_status_kb(p.pid, key) / 1024 for p in self.processes.values()]

    def pss_mb(self) -> list[float]:
        return [_rollup_kb(p.pid, "Pss") / 1024 for p in self.processes.values()]

    def cpu_seconds(self) -> float:
        """CPU used by the daemons, including those killed since the start."""
        return self.cpu_of_killed + sum(_cpu(p.pid) for p in self.processes.values())

    # -- bursts -----------------------------------------------------------------------

    def burst(
        self, tag: str, per_school: int, first: int, kill: int = 0, restart_delay: float = 1.0
    ) -> Burst:
        """`per_school` requests into every mailbox at once (one MULTIAPPEND each, all
        schools in parallel); with `kill`, that many random daemons are SIGKILLed while the
        burst is handled and started again `restart_delay` seconds later."""
        messages = {
            name: [
                (f"<fleet.{tag}.{name}.{n}@bench.example.org>", first + n)
                for n in range(per_school)
            ]
            for name in self.names
        }
        clients = {name: _login(self.dovecot.port, name) for name in self.names}
        sent: dict[str, float] = {}
        lock = threading.Lock()
        go = threading.Barrier(len(self.names) + 1)

        def append(name: str) -> None:
            raws = [adult_request(number, mid) for mid, number in messages[name]]
            go.wait()
            clients[name].multiappend("INBOX", raws)
            at = time.monotonic()
            with lock:
                sent.update((mid, at) for mid, _ in messages[name])

        victims = random.sample(self.names, kill)
        threads = [threading.Thread(target=append, args=(n,)) for n in self.names]
        for thread in threads:
            thread.start()
        cpu_before = self.cpu_seconds()
        go.wait()
        started = time.monotonic()
        for thread in threads:
            thread.join()
        appended = time.monotonic() - started
        for client in clients.values():
            client.logout()
        if victims:
            time.sleep(0.2)  # the daemons are in the middle of the burst
            for name in victims:
                self.kill(name)
            time.sleep(restart_delay)
            for name in victims:
                self.start(name)
        wait_until(lambda: self._answered(sent) == len(sent), 600)
        cpu = self.cpu_seconds() - cpu_before
        settle = time.monotonic() + 10  # a late duplicate would show up here
        wait_until(lambda: time.monotonic() > settle, 11)
        replies = Counter(mid for _at, mid in self.handler.arrivals if mid in sent)
        first_reply: dict[str, float] = {}
        for at, mid in self.handler.arrivals:
            if mid in sent and mid not in first_reply:
                first_reply[mid] = at
        delays = sorted((first_reply[mid] - sent[mid]) * 1000 for mid in first_reply)
        return Burst(
            requests=len(sent),
            seconds_to_append=round(appended, 2),
            answered=len(first_reply),
            lost=len(sent) - len(first_reply),
            answered_twice=sum(1 for n in replies.values() if n > 1),
            p50_ms=round(percentile(delays, 50), 1) if delays else 0.0,
            p95_ms=round(percentile(delays, 95), 1) if delays else 0.0,
            p99_ms=round(percentile(delays, 99), 1) if delays else 0.0,
            max_ms=round(delays[-1], 1) if delays else 0.0,
            killed=sorted(victims),
            restart_delay_seconds=restart_delay if victims else 0.0,
            fleet_cpu_seconds=round(cpu, 1),
        )

    def _answered(self, sent: dict[str, float]) -> int:
        replied = {mid for _at, mid in self.handler.arrivals}
        return sum(1 for mid in sent if mid in replied)

    def close(self) -> None:
        self.stop_all()
        self.pgbouncer.stop()
        self.smtp.stop()
        self.dovecot.cleanup()
        self._drop_database()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}


def _login(port: int, user: str) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30)
    client.login(user, IMAP_PASSWORD)
    return client


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rollup_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run(args: argparse.Namespace, workdir: Path) -> FleetReport:
    report = FleetReport(machine(), args.schools, args.pool)
    fleet = Fleet(workdir, args.schools, args.pool)
    try:
        fleet.setup()
        fleet.start_all()
        wait_until(lambda: False, args.settle)  # startup work done: the fleet is idle
        report.load_average["idle"] = os.getloadavg()[0]
        before, started = fleet.cpu_seconds(), time.monotonic()
        wait_until(lambda: False, args.idle_seconds)
        elapsed = time.monotonic() - started
        report.idle_seconds = round(elapsed, 1)
        report.idle_cpu_percent_of_core = round(100 * (fleet.cpu_seconds() - before) / elapsed, 2)
        rss = sorted(fleet.rss_mb())
        report.rss_mb_total = round(sum(rss), 1)
        report.pss_mb_total = round(sum(fleet.pss_mb()), 1)
        report.rss_mb_per_instance_median = round(percentile(rss, 50), 1)
        report.rss_mb_per_instance_max = round(rss[-1], 1)
        print(report, flush=True)
        report.load_average["burst"] = os.getloadavg()[0]
        report.bursts.append(fleet.burst("calm", args.per_school, 0))
        print(report.bursts[-1], flush=True)
        report.load_average["burst with kills"] = os.getloadavg()[0]
        report.bursts.append(
            fleet.burst("kill", args.per_school, args.per_school, args.kill, args.restart_delay)
        )
        print(report.bursts[-1], flush=True)
        report.peak_rss_mb_per_instance_max = round(max(fleet.rss_mb("VmHWM")), 1)
    finally:
        fleet.close()
    return report


def markdown(report: FleetReport) -> str:
    m = report.machine
    calm, killed = report.bursts
    lines = [
        f"# credmail fleet benchmark, {report.schools} schools",
        "",
        f"{m['date']}; {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"Dovecot {m['dovecot']}; one Dovecot ({report.schools} mailboxes), one PostgreSQL "
        f"(a schema per school) behind one PgBouncer (transaction mode, pool "
        f"{report.pgbouncer_pool}); each daemon `pool_size = 1`, no prepared statements.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| RSS, whole fleet (sum) | {report.rss_mb_total} MB | |",
        f"| PSS, whole fleet (shared pages counted once) | {report.pss_mb_total} MB | |",
        f"| RSS per instance, median / max (idle) | {report.rss_mb_per_instance_median} / "
        f"{report.rss_mb_per_instance_max} MB | < {TARGETS['rss_mb_per_instance']:.0f} MB |",
        f"| peak RSS per instance (after the bursts) | {report.peak_rss_mb_per_instance_max} MB"
        " | |",
        f"| idle fleet CPU over {report.idle_seconds:.0f} s | "
        f"{report.idle_cpu_percent_of_core}% of one core | "
        f"< {TARGETS['idle_cpu_percent_of_core']:.0f}% |",
    ]
    for burst, title in ((calm, "burst"), (killed, "burst with daemons SIGKILLed")):
        lines.append(
            f"| {title}: {burst.requests} requests appended in {burst.seconds_to_append} s, "
            f"mail-to-reply p50 / p95 / p99 / max | {burst.p50_ms} / {burst.p95_ms} / "
            f"{burst.p99_ms} / {burst.max_ms} ms | p99 < {TARGETS['burst_p99_ms']:.0f} ms |"
        )
        lines.append(
            f"| {title}: CPU used by the fleet | {burst.fleet_cpu_seconds} s "
            f"({1000 * burst.fleet_cpu_seconds / burst.requests:.0f} ms per request) | |"
        )
        lines.append(
            f"| {title}: answered / lost / answered twice | {burst.answered} / {burst.lost} / "
            f"{burst.answered_twice} | all / 0 / 0 |"
        )
    lines.append("")
    loads = ", ".join(f"{phase} {load:.1f}" for phase, load in report.load_average.items())
    lines.append(f"Machine load (1-minute average, all processes) when each phase began: {loads}.")
    lines.append("")
    lines.append(
        f"Killed in the second burst: {len(killed.killed)} daemons ({', '.join(killed.killed)}),"
        f" SIGKILL 0.2 s after the last append, started again {killed.restart_delay_seconds} s"
        " later."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> FleetReport:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="3 schools, short (CI)")
    parser.add_argument("--schools", type=int, default=50)
    parser.add_argument("--per-school", type=int, default=10)
    parser.add_argument("--kill", type=int, default=10)
    parser.add_argument("--restart-delay", type=float, default=1.0)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=15, help="seconds before measuring idle")
    parser.add_argument("--pool", type=int, default=10, help="PgBouncer's server connections")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="keep the work folder (daemon logs) here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.schools, args.per_school, args.kill = 3, 2, 1
        args.idle_seconds, args.settle, args.pool = 2, 1, 3
    with tempfile.TemporaryDirectory(prefix="credmail-fleet-") as workdir:
        folder = args.keep or Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        report = run(args, folder)
    name = "smoke-fleet" if args.smoke else "fleet"
    write_results(args.output, name, asdict(report), markdown(report))
    return report


if __name__ == "__main__":
    main()
