"""The soak: a long run of the daemon and `credmail web` together, watching their memory.

    python -m bench.soak --database sqlite --minutes 30       # the real run (and postgresql)
    python -m bench.soak --database postgresql --minutes 3 --warmup 1   # a check of the script

For `--minutes`, requests arrive at `--rate` a second (2) and ordinary mail at a quarter of
that, over IMAP into a real Dovecot; the daemon (`credmail run`) answers through a real
SMTP server; each reply's collegamento is pressed on `credmail web` (the page, then the
confirmation: a register task), and a signed-in secretariat member opens a console page
every two seconds (dashboard, review queue, register tasks, outbox, activity log). The
resident memory (VmRSS) of both processes is read every minute; the growth is counted from
minute `--warmup` (5) to the end and to the peak. At the end: every request answered once.

Not a test (it takes half an hour): the numbers go to bench/results/soak-<database>.json
and .md; bench/results/soak.md says what they mean, with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import httpx

from bench.mix import GUARDIANS, STAFF, directory_csv, ordinary
from bench.run import RESULTS, adult_request, empty_postgres, machine, write_results
from tests.support.browser import WebServer, start_web
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env, write_config

ADULTS = STAFF + GUARDIANS
TOKEN = re.compile(r"/reset/([A-Za-z0-9_.~-]+)")
TASK = re.compile(r"/console/registro/(\d+)/fatto")
DONE_PER_VISIT = 40
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ["/console/", "/console/revisione", "/console/registro", "/console/posta"]
PAGES.append("/console/attivita")
PRESS_AFTER_SECONDS = 2.0
PASSWORD = "una password lunga e qualunque"  # noqa: S105 - a throwaway account
LIMITS = {  # one sender writes again every ~11 minutes: no abuse limit may answer instead
    "limits__account_links_per_15_minutes": "1000",
    "limits__address_links_per_day": "1000",
    "limits__sender_replies_per_day": "1000",
    "limits__global_replies_per_hour": "1000000",
    "web__post_per_minute": "100000",
    "web__invalid_per_hour": "100000",
}


class LinkHandler:
    """aiosmtpd handler: each reply's In-Reply-To and the collegamento in its text."""

    def __init__(self) -> None:
        self.replies: Counter[str] = Counter()
        self.others: Counter[str] = Counter()
        self.links: Queue[tuple[float, str]] = Queue()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(preferencelist=("plain",))
        found = TOKEN.search(body.get_content() if body is not None else "")
        with self.lock:  # a reply carries a link; the mail of a task carried out does not
            counted = self.replies if found else self.others
            counted[str(msg.get("In-Reply-To", "")).strip()] += 1
        if found:
            self.links.put((time.monotonic(), found.group(1)))
        return "250 OK"


@dataclass
class Sample:
    minute: int
    daemon_rss_mb: float
    web_rss_mb: float
    requests: int
    replies: int
    links_pressed: int
    console_pages: int


@dataclass
class Soak:
    database: str
    minutes: float
    rate: float
    warmup_minutes: int
    machine: dict[str, str]
    samples: list[Sample] = field(default_factory=list)
    requests: int = 0
    ordinary: int = 0
    answered: int = 0
    answered_twice: int = 0
    links_pressed: int = 0
    tasks_confirmed: int = 0
    not_confirmed: dict[str, int] = field(default_factory=dict)
    tasks_done: int = 0
    console_pages: int = 0
    console_errors: int = 0
    log_errors: int = 0
    daemon_growth_mb: float = 0.0
    web_growth_mb: float = 0.0
    daemon_peak_growth_mb: float = 0.0
    web_peak_growth_mb: float = 0.0
    load_average: str = ""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def database_url(kind: str, workdir: Path) -> str:
    return f"sqlite:///{workdir / 'credmail.db'}" if kind == "sqlite" else empty_postgres()


class Cookies:
    """The console's cookies are Secure; over plain HTTP on loopback they are sent by hand."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def keep(self, answer: httpx.Response) -> None:
        for header in answer.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self.jar[name.strip()] = rest.split(";", 1)[0]

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}


class Load:
    """The three streams: mail in, links pressed, console pages; counted as they go."""

    def __init__(self, dovecot: Dovecot, web: WebServer, handler: LinkHandler) -> None:
        self.dovecot, self.web, self.handler = dovecot, web, handler
        self.stop = threading.Event()
        self.requests = self.ordinary = self.pressed = self.confirmed = 0
        self.pages = self.page_errors = 0
        self.unconfirmed: Counter[str] = Counter()
        self.tasks_done = 0

    def mail(self, seconds: float, rate: float) -> None:
        started = time.monotonic()
        number = 0
        with self.dovecot.client() as client:
            while not self.stop.is_set() and time.monotonic() - started < seconds:
                due = started + number / rate
                time.sleep(max(0.0, due - time.monotonic()))
                mid = f"<soak.{number}@soak.example.org>"
                client.append("INBOX", adult_request(number % ADULTS, mid))
                self.requests += 1
                if number % 4 == 0:
                    client.append("INBOX", ordinary(100_000 + number, _Rng(number)))
                    self.ordinary += 1
                number += 1

    def links(self) -> None:
        with httpx.Client(base_url=self.web.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    arrived, token = self.handler.links.get(timeout=0.5)
                except Empty:
                    continue
                # a person reads the mail first: the link is made valid by the commit
                # that follows the SMTP server's acceptance, a moment after it
                time.sleep(max(0.0, arrived + PRESS_AFTER_SECONDS - time.monotonic()))
                page = client.get(f"/reset/{token}")
                found = CSRF.search(page.text)
                self.pressed += 1
                if not found:
                    self.unconfirmed[f"page {_title(page)}"] += 1
                    continue
                if found:
                    done = client.post(f"/reset/{token}", data={"csrf_token": found.group(1)})
                    if "Richiesta confermata" in done.text:
                        self.confirmed += 1
                    else:
                        self.unconfirmed[_title(done)] += 1

    def console(self) -> None:
        cookies = Cookies()
        with httpx.Client(base_url=self.web.url, timeout=30) as client:
            page = client.get("/console/accesso")
            cookies.keep(page)
            form = {"csrf_token": _csrf(page.text), "nome": "soak", "password": PASSWORD}
            signed = client.post("/console/accesso", data=form, headers=cookies.header())
            cookies.keep(signed)
            n = 0
            while not self.stop.wait(2.0):
                answer = client.get(PAGES[n % len(PAGES)], headers=cookies.header())
                self.pages += 1
                self.page_errors += answer.status_code != 200
                if PAGES[n % len(PAGES)] == "/console/registro":
                    self._done(client, cookies, answer.text)
                n += 1

    def _done(self, client: httpx.Client, cookies: Cookies, page: str) -> None:
        """The secretariat carries out the open tasks it sees (up to a day's worth of a
        busy desk at a time), as it does: the list stays as long as a day's work."""
        token = CSRF.search(page)
        for task in TASK.findall(page)[:DONE_PER_VISIT]:
            if token is None or self.stop.is_set():
                return
            done = client.post(
                f"/console/registro/{task}/fatto",
                data={"csrf_token": token.group(1)},
                headers=cookies.header(),
            )
            self.tasks_done += done.status_code == 303


class _Rng:
    """bench.mix.ordinary wants a random.Random; a fixed, cheap stand-in per message."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def randrange(self, n: int) -> int:
        return self.seed % n

    def choice(self, items: list[str]) -> str:
        return items[self.seed % len(items)]

    def randint(self, low: int, high: int) -> int:
        return low + self.seed % (high - low + 1)


def _title(answer: httpx.Response) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", answer.text, re.S)
    return f"{answer.status_code} {found.group(1).strip() if found else ''}"


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    if not found:
        raise RuntimeError("the console's sign-in page has no form")
    return found.group(1)


def run(kind: str, minutes: float, rate: float, warmup: int, workdir: Path) -> Soak:
    dovecot = Dovecot().start()
    handler = LinkHandler()
    smtp = SmtpServer(handler=handler).start()  # type: ignore[arg-type]
    soak = Soak(kind, minutes, rate, warmup, machine())
    try:
        env = _prepare(kind, workdir, dovecot, smtp)
        _soak(soak, env, workdir, dovecot, handler)
    finally:
        smtp.stop()
        dovecot.cleanup()
    return soak


def _prepare(kind: str, workdir: Path, dovecot: Dovecot, smtp: SmtpServer) -> dict[str, str]:
    settings = server_env(
        dovecot,
        smtp,
        database_url(kind, workdir),
        logging__format="json",
        mailbox__poll_interval_seconds="30",
        **LIMITS,
    )
    config = write_config(workdir / "credmail.toml", settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    env["CREDMAIL_CONFIG"] = str(config)
    people = workdir / "people.csv"
    people.write_bytes(directory_csv(date.today()))
    for args, stdin in ((["db", "upgrade"], ""), (["directory", "import", str(people)], "")):
        _credmail(env, args, stdin)
    _credmail(env, ["staff", "add", "soak", "--role", "amministratore"], PASSWORD + "\n")
    return env


def _credmail(env: dict[str, str], args: list[str], stdin: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "credmail", *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
    )


def _soak(
    soak: Soak, env: dict[str, str], workdir: Path, dovecot: Dovecot, handler: LinkHandler
) -> None:
    log = workdir / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "credmail", "run"], env=env, stdout=out, stderr=out
        )
    web = start_web(Path(env["CREDMAIL_CONFIG"]), workdir / "web.log")
    load = Load(dovecot, web, handler)
    seconds = soak.minutes * 60
    streams = [
        threading.Thread(target=load.mail, args=(seconds, soak.rate), daemon=True),
        threading.Thread(target=load.links, daemon=True),
        threading.Thread(target=load.console, daemon=True),
    ]
    try:
        for stream in streams:
            stream.start()
        started = time.monotonic()
        for minute in range(int(soak.minutes) + 1):
            time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
            soak.samples.append(_sample(minute, daemon, web, load, handler))
            print(soak.samples[-1], flush=True)
        streams[0].join()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _answered(handler) < load.requests:
            time.sleep(0.5)
        deadline = time.monotonic() + PRESS_AFTER_SECONDS + 15
        while time.monotonic() < deadline and not handler.links.empty():
            time.sleep(0.5)
        time.sleep(PRESS_AFTER_SECONDS + 1)  # the last one pressed
        load.stop.set()
        soak.load_average = Path("/proc/loadavg").read_text().strip()
    finally:
        load.stop.set()
        daemon.terminate()
        daemon.wait(timeout=30)
        web.stop()
    _totals(soak, load, handler, log.read_text(errors="replace") + web.output())


def _sample(
    minute: int, daemon: subprocess.Popen[bytes], web: WebServer, load: Load, h: LinkHandler
) -> Sample:
    return Sample(
        minute,
        rss_mb(daemon.pid),
        rss_mb(web.process.pid),
        load.requests,
        sum(h.replies.values()),
        load.pressed,
        load.pages,
    )


def _answered(handler: LinkHandler) -> int:
    with handler.lock:
        return sum(1 for mid in handler.replies if mid.startswith("<soak."))


def _totals(soak: Soak, load: Load, handler: LinkHandler, logs: str) -> None:
    soak.requests, soak.ordinary = load.requests, load.ordinary
    soak.answered = _answered(handler)
    soak.answered_twice = sum(1 for n in handler.replies.values() if n > 1)
    soak.links_pressed, soak.tasks_confirmed = load.pressed, load.confirmed
    soak.not_confirmed = dict(load.unconfirmed)
    soak.tasks_done = load.tasks_done
    soak.console_pages, soak.console_errors = load.pages, load.page_errors
    soak.log_errors = sum(1 for line in logs.splitlines() if '"level": "error"' in line)
    base = next((s for s in soak.samples if s.minute == soak.warmup_minutes), soak.samples[0])
    last = soak.samples[-1]
    soak.daemon_growth_mb = round(last.daemon_rss_mb - base.daemon_rss_mb, 1)
    soak.web_growth_mb = round(last.web_rss_mb - base.web_rss_mb, 1)
    later = [s for s in soak.samples if s.minute >= base.minute]
    soak.daemon_peak_growth_mb = round(max(s.daemon_rss_mb for s in later) - base.daemon_rss_mb, 1)
    soak.web_peak_growth_mb = round(max(s.web_rss_mb for s in later) - base.web_rss_mb, 1)


def markdown(soak: Soak) -> str:
    m = soak.machine
    lines = [
        f"Soak on {soak.database}: {soak.minutes:g} minutes at {soak.rate:g} requests/s plus "
        f"{soak.ordinary:,} ordinary mails, measured {m['date']} on {m['cores']} cores "
        f"({m['cpu']}), Python {m['python']}; load average at the end: {soak.load_average}.",
        "",
        f"- requests {soak.requests:,}, answered {soak.answered:,}, answered twice "
        f"{soak.answered_twice}; collegamenti pressed {soak.links_pressed:,}, tasks confirmed "
        f"{soak.tasks_confirmed:,} (the other answers: {soak.not_confirmed or 'none'}), "
        f"tasks carried out in the console {soak.tasks_done:,}; "
        f"console pages {soak.console_pages:,} "
        f"({soak.console_errors} not 200); error lines in the logs {soak.log_errors}",
        f"- RSS growth from minute {soak.warmup_minutes} to the end: daemon "
        f"{soak.daemon_growth_mb} MB, web {soak.web_growth_mb} MB (to the peak: "
        f"{soak.daemon_peak_growth_mb} / {soak.web_peak_growth_mb} MB)",
        "",
        "| minute | daemon RSS MB | web RSS MB | requests | replies | links pressed | "
        "console pages |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in soak.samples:
        lines.append(
            f"| {s.minute} | {s.daemon_rss_mb} | {s.web_rss_mb} | {s.requests:,} | "
            f"{s.replies:,} | {s.links_pressed:,} | {s.console_pages:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Soak:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second")
    parser.add_argument("--warmup", type=int, default=5, help="growth counted from this minute")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--name", help="results file name (default: soak-<database>)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credmail-soak-") as workdir:
        soak = run(args.database, args.minutes, args.rate, args.warmup, Path(workdir))
    write_results(args.output, args.name or f"soak-{args.database}", asdict(soak), markdown(soak))
    return soak


if __name__ == "__main__":
    main()
