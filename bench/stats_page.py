"""The statistics page over a realistic school year: time per page for 13 and 52 weeks.

    python -m bench.stats_page                 # SQLite and PostgreSQL ($PG_TEST_URL)
    python -m bench.stats_page --smoke         # a tenth of the year, SQLite, 5 samples

The year (a school of about 1,800 pupils and 3,500 guardians, mail peaking in the first
weeks of September): 30,000 ordinary mails and 6,600 requests in the ledger (5,000
answered with a link, 1,000 held for review, 500 automated, 100 errors), their link
mails in the outbox (the approvals' review items and the done register tasks of the
last `retention_days` only, as the retention leaves them), 40 requests and 25 register
tasks waiting, and a September campaign of 2,700 links (1 % bounced). Requests go through
the whole ASGI app in process (session check, desk, the grouped queries, SVG, template);
the CPU time of this process per page (the app's thread included, PostgreSQL's server
not) varies less than the wall clock on a shared machine. Writes bench/results/stats.json
and stats.md, with the machine's load (`uptime`) at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from bench.console_pages import PageResult, _reset_postgres, signed_in, time_page
from credmail.adapters.db.models import (
    CampaignRecipientRow,
    CampaignRow,
    LedgerRow,
    OutboxRow,
    RegisterTaskRow,
    ReviewRow,
)
from credmail.bootstrap import bootstrap
from credmail.config import load_settings
from tests.support.wiring import IDENTITY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RETENTION = timedelta(days=30)
OUTCOMES = ["answered"] * 50 + ["review"] * 10 + ["automated"] * 5 + ["errors"]


def _week_weight(moment: datetime) -> float:
    """Mail per week: high in September, low in August and at Christmas."""
    return {9: 6.0, 10: 2.0, 8: 0.3, 12: 0.8}.get(moment.month, 1.0)


def _moments(now: datetime, count: int, rng: random.Random) -> list[datetime]:
    """`count` moments over the last 365 days, weighted by the school calendar."""
    found: list[datetime] = []
    while len(found) < count:
        moment = now - timedelta(seconds=rng.uniform(0, 365 * 86_400))
        if rng.random() * 6.0 < _week_weight(moment):
            found.append(moment)
    return found


def _outbox(i: int, created: datetime, sent: datetime | None, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": f"<bench{i}@example.org>",
        "template": "link_adult",
        "recipient": None,
        "recipient_key": None,
        "username": None,
        "purpose": "adult_reset",
        "envelope_from": "segreteria@example.org",
        "status": "sent" if sent else "pending",
        "attempts": 1,
        "created_at": created,
        "next_attempt_at": created,
        "sent_at": sent,
        "ledger_id": None,
        "review_id": None,
        **extra,
    }


def seed(url: str, scale: float, now: datetime) -> dict[str, int]:
    rng = random.Random(2026)
    engine = create_engine(url)
    ledger, outbox, reviews, tasks = [], [], [], []
    requests = int(6_600 * scale)
    for i, moment in enumerate(_moments(now, int(30_000 * scale) + requests, rng), start=1):
        outcome = "ignored" if i > requests else OUTCOMES[i % len(OUTCOMES)]
        ledger.append(
            {
                "id": i,
                "folder": "INBOX",
                "validity": 1,
                "source_key": str(i),
                "handled_at": moment,
                "outcome": outcome,
                "reasons": [],
            }
        )
        if outcome == "answered":
            sent = moment + timedelta(seconds=rng.expovariate(1 / 20))
            outbox.append(_outbox(i, moment, sent if sent < now else None, ledger_id=i))
        elif outcome == "review":
            decided = moment + timedelta(hours=rng.expovariate(1 / 20))
            recent = now - moment < RETENTION
            if recent or decided > now:
                status = "pending" if decided > now else "approved"
                reviews.append({"id": i, "created_at": moment, "status": status})
            if decided < now:  # older review items are purged: the mail's review_id is gone
                review_id = i if recent else None
                outbox.append(_outbox(i, decided, decided, review_id=review_id))
    for n, moment in enumerate(_moments(now, int(5_000 * scale), rng)):
        confirmed = moment + timedelta(hours=rng.expovariate(1 / 30))
        done = confirmed + timedelta(hours=rng.expovariate(1 / 40))
        if now - done > RETENTION and done < now:
            continue  # purged by the retention
        tasks.append(
            {
                "selector": f"s{n}",
                "username": f"U{n}",
                "purpose": "adult_reset",
                "role": "guardian",
                "first_name": "Nome",
                "last_name": "Cognome",
                "requested_at": moment,
                "confirmed_at": min(confirmed, now),
                "status": "done" if done < now else "open",
                "done_at": done if done < now else None,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(LedgerRow.__table__), ledger)
        review_rows = [
            {**r, "kind": "adult", "subject": "Richiesta credenziali", "reasons": []}
            for r in reviews
        ]
        if review_rows:
            conn.execute(insert(ReviewRow.__table__), review_rows)
        conn.execute(insert(OutboxRow.__table__), outbox)
        conn.execute(insert(RegisterTaskRow.__table__), tasks)
        start = datetime(now.year if now.month >= 9 else now.year - 1, 9, 1, 6, tzinfo=UTC)
        campaign = conn.execute(
            insert(CampaignRow.__table__).returning(CampaignRow.__table__.c.id),
            {"name": "settembre", "status": "done", "created_at": start, "start_at": start},
        ).scalar_one()
        pairs = int(2_700 * scale)
        conn.execute(
            insert(CampaignRecipientRow.__table__),
            [
                {
                    "campaign_id": campaign,
                    "address": f"g{n}@example.org",
                    "address_key": f"g{n}@example.org",
                    "student": f"S{n}",
                    "guardians": [f"G{n}"],
                    "state": "bounced" if n % 100 == 0 else "queued",
                    "message_id": f"<bench{n + 10_000_000}@example.org>",
                    "created_at": start,
                }
                for n in range(pairs)
            ],
        )
    engine.dispose()
    return {"ledger": len(ledger), "outbox": len(outbox), "tasks": len(tasks), "pairs": pairs}


def measure(url: str, database: str, scale: float, samples: int) -> tuple[list[PageResult], Any]:
    settings = load_settings(None, environ={**IDENTITY, "CREDMAIL_DATABASE__URL": url})
    app = bootstrap(settings)
    app.upgrade_schema()
    sizes = seed(url, scale, datetime.now(UTC))
    client = signed_in(app, settings, "preside", "amministratore")
    pages = {
        "statistics, 13 weeks": "/console/statistiche",
        "statistics, 52 weeks": "/console/statistiche?settimane=52",
        "one CSV, 52 weeks": "/console/statistiche/richieste.csv?settimane=52",
    }
    results, cpu = [], {}
    for name, path in pages.items():
        started = time.process_time()
        results.append(time_page(client, database, name, [path], samples))
        cpu[f"{database}, {name}"] = round(
            (time.process_time() - started) * 1000 / (samples + 3), 1
        )
    sizes["cpu_ms"] = cpu
    client.close()
    app.close()
    return results, sizes


def write(
    results: list[PageResult], sizes: Any, out: Path, stem: str, load: tuple[str, str]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"a school year: {sizes['ledger']:,} ledger rows, {sizes['outbox']:,} outbox rows, "
        f"{sizes['tasks']:,} register tasks, a campaign of {sizes['pairs']:,} links; "
        "server time per page in process (ASGI app, session, desk, queries, SVG, template).",
        "",
        f"Load (`uptime`) at the start: {load[0]}; at the end: {load[1]}",
        "",
        "| database | page | samples | p50 ms | p95 ms | p99 ms | max ms | CPU ms (credmail) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    cpu = sizes.get("cpu_ms", {})
    lines += [
        f"| {r.database} | {r.page} | {r.samples} | {r.p50_ms} | {r.p95_ms} | "
        f"{r.p99_ms} | {r.max_ms} | {cpu.get(f'{r.database}, {r.page}', '')} |"
        for r in results
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    document = {"measured": when, "load": list(load), "sizes": sizes}
    document["results"] = [asdict(r) for r in results]
    (out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> list[PageResult]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--stem", default="stats")
    args = parser.parse_args(argv)
    scale, samples = (0.1, 5) if args.smoke else (1.0, args.samples)
    load = _uptime()
    results: list[PageResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        found, sizes = measure(f"sqlite:///{tmp}/bench.db", "sqlite", scale, samples)
        results += found
    pg = os.environ.get("PG_TEST_URL")
    if pg and not args.smoke:
        _reset_postgres(pg)
        found, more = measure(pg, "postgresql", scale, samples)
        results += found
        sizes["cpu_ms"] |= more["cpu_ms"]
    stem = f"{args.stem}_smoke" if args.smoke else args.stem
    write(results, sizes, args.output, stem, (load, _uptime()))
    return results


def _uptime() -> str:
    found = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return found.stdout.strip().split("load average: ")[-1]


if __name__ == "__main__":
    main(sys.argv[1:])
