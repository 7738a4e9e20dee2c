"""The campaign's send rate with pacing off, against the raw aiosmtplib floor.

credmail: a campaign of N mails (the September directory of tests/support/campaign_data)
queued in batches and delivered by the outbox, as the daemon's worker does (drain, then
top up), over one SMTP connection per drain, with the database it is given. The floor:
the very same rendered messages sent with aiosmtplib over one connection to the same
aiosmtpd server, nothing else. Writes bench/results/campaign_rate.json and .md.

Usage: python -m bench.campaign_rate [--families 750 --students 1800] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import aiosmtplib
from sqlalchemy import create_engine, text

from credmail.adapters.db.directory_import import import_records
from credmail.config import load_settings
from credmail.service.directory_csv import read_directory
from credmail.service.review import Actor
from tests.support.campaign_data import school_year
from tests.support.servers import SmtpServer
from tests.support.wiring import IDENTITY, make_app

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    database: str
    mails: int
    links: int
    credmail_seconds: float
    credmail_rate: float
    floor_seconds: float
    floor_rate: float
    ratio: float
    batch_size: int
    when: str
    machine: str
    cpus: int | None
    load_average: float  # 1-minute, at the end: other work on the machine slows both sides


def run_campaign(
    database: str, families: int, students: int, batch: int
) -> tuple[Result, list[tuple[str, list[str], bytes]]]:
    smtp = SmtpServer().start()
    try:
        with tempfile.TemporaryDirectory() as work:
            url = database or f"sqlite:///{work}/bench.db"
            if url.startswith("postgresql"):
                _empty(url)  # a database of its own: the bench starts from nothing
            env = {
                **IDENTITY,
                "CREDMAIL_SMTP__HOST": "127.0.0.1",
                "CREDMAIL_SMTP__PORT": str(smtp.port),
                "CREDMAIL_SMTP__SECURITY": "none",
                "CREDMAIL_DATABASE__URL": url,
                "CREDMAIL_MAILBOX__KIND": "maildir",
                "CREDMAIL_MAILBOX__MAILDIR_PATH": f"{work}/maildir",
                "CREDMAIL_CAMPAIGN__BATCH_SIZE": str(batch),
                "CREDMAIL_CAMPAIGN__DAILY_CAP": "100000",
                "CREDMAIL_LOGGING__LEVEL": "warning",
            }
            app = make_app(load_settings(None, environ=env), directory=False)
            year = school_year(families, students)
            with app.uow() as uow:
                import_records(uow.session, read_directory(year.csv(date.today())), prune=False)
                uow.commit()
            app.desks.campaign.start("bench", None, Actor("bench", "cli"))
            started = time.perf_counter()
            sent = 0
            while True:  # the daemon's worker: drain, then top up, until nothing is left
                queued = app.campaigns.top_up()
                sent += asyncio.run(app.delivery.drain(batch=batch)).sent
                if not queued and not app.campaigns.top_up():
                    break
            sent += asyncio.run(app.delivery.drain(batch=batch)).sent
            seconds = time.perf_counter() - started
            app.close()
        messages = list(smtp.handler.messages)
        floor_seconds = asyncio.run(floor(smtp.port, messages))
    finally:
        smtp.stop()
    assert sent == len(messages) == year.expected_mails(), (sent, len(messages))
    result = Result(
        database=url.split(":")[0],
        mails=sent,
        links=len(year.expected_pairs()),
        credmail_seconds=round(seconds, 3),
        credmail_rate=round(sent / seconds, 1),
        floor_seconds=round(floor_seconds, 3),
        floor_rate=round(sent / floor_seconds, 1),
        ratio=round(seconds / floor_seconds, 1),
        batch_size=batch,
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=platform.platform(),
        cpus=os.cpu_count(),
        load_average=round(os.getloadavg()[0], 1),
    )
    return result, messages


def _empty(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


async def floor(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    """The same bytes, the same envelope, one aiosmtplib connection: nothing else."""
    started = time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
        for sender, recipients, content in messages:
            await smtp.sendmail(sender, recipients, content)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=750)
    parser.add_argument("--students", type=int, default=1800)
    parser.add_argument("--batch", type=int, default=20, help="[campaign] batch_size")
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        help="URL (default: SQLite in a temporary folder); a PostgreSQL one is emptied first",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = [
        run_campaign(url, args.families, args.students, args.batch)[0]
        for url in (args.database or [""])
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "campaign_rate.json").write_text(
        json.dumps([asdict(r) for r in results], indent=2) + "\n"
    )
    lines = [
        "# Campaign send rate, pacing off, vs the raw aiosmtplib floor",
        "",
        "| database | mails | links | credmail s | mails/s | floor s | floor mails/s | x floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.database} | {r.mails} | {r.links} | {r.credmail_seconds} | {r.credmail_rate} "
        f"| {r.floor_seconds} | {r.floor_rate} | {r.ratio} |"
        for r in results
    ]
    lines += [
        "",
        f"batch_size {args.batch}; {results[0].machine}, {results[0].cpus} CPUs, load "
        f"average {results[0].load_average}; "
        f"{results[0].when}. credmail renders each mail, reserves its links, commits the "
        "batch, then per mail mints the links and marks the row sent (one commit each); "
        "the floor sends the same bytes and records nothing.",
    ]
    (args.output / "campaign_rate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
