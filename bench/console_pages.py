"""The console's heaviest pages with a big school: the review queue with 10,000 pending
items and the directory search with 20,000 people, p95 server time per page.

    python -m bench.console_pages                 # SQLite and PostgreSQL ($PG_TEST_URL)
    python -m bench.console_pages --smoke         # 500 items, 1,000 people, SQLite

Requests go through the whole ASGI app in process (Starlette's TestClient: routing,
session check, desk, database, template), so the time is the server's, without a network.
Writes bench/results/console_pages.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Table, create_engine, insert, text
from starlette.testclient import TestClient

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow, ReviewRow
from credmail.bootstrap import App, bootstrap
from credmail.config import Settings, load_settings
from credmail.service.desks import Actor
from credmail.web.app import create_web_app
from tests.support.wiring import IDENTITY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "una password lunga"  # noqa: S105 - a throwaway account in a temporary database
REASONS = ["unknown_sender", "ambiguous_person", "unauthenticated_sender", "spam_flagged"]
SURNAMES = [
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
]
NAMES = ["Luca", "Giulia", "Marco", "Sara", "Paolo", "Anna", "Davide", "Elena", "Franco"]
RAW = (
    b"From: someone@example.org\r\nSubject: Richiesta credenziali\r\n\r\n"
    + b"Buongiorno, vorrei le credenziali.\r\n" * 20
)


@dataclass
class PageResult:
    database: str
    page: str
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def seed(url: str, items: int, people: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        rows, emails, links = [], [], []
        for i in range(1, people + 1):
            student = i % 3 == 0
            rows.append(
                {
                    "id": i,
                    "username": f"{'S' if student else 'G'}{i:06}",
                    "role": "student" if student else "guardian",
                    "first_name": NAMES[i % len(NAMES)],
                    "last_name": SURNAMES[i % len(SURNAMES)],
                    "birth_date": date(2012, 1, 1) if student else None,
                    "class_name": None,
                    "language": None,
                    "new_student": False,
                    "active": True,
                }
            )
            if not student:
                address = f"{NAMES[i % len(NAMES)].lower()}.{i}@famiglie.example.org"
                emails.append(
                    {"person_id": i, "position": 0, "address": address, "address_key": address}
                )
            else:
                links.append({"guardian_id": i - 1, "student_id": i})
        conn.execute(insert(cast(Table, PersonRow.__table__)), rows)
        conn.execute(insert(cast(Table, EmailRow.__table__)), emails)
        conn.execute(insert(cast(Table, GuardianshipRow.__table__)), links)
        conn.execute(
            insert(cast(Table, ReviewRow.__table__)),
            [
                {
                    "created_at": now - timedelta(minutes=i),
                    "status": "pending",
                    "kind": "student" if i % 4 == 0 else "adult",
                    "sender": f"mittente{i}@example.org",
                    "message_id": f"<{i}@example.org>",
                    "subject": "Richiesta credenziali",
                    "reasons": [REASONS[i % len(REASONS)]],
                    "raw": RAW,
                }
                for i in range(items)
            ],
        )
    engine.dispose()


def measure(url: str, database: str, items: int, people: int, samples: int) -> list[PageResult]:
    settings = load_settings(None, environ={**IDENTITY, "CREDMAIL_DATABASE__URL": url})
    app = bootstrap(settings)
    app.upgrade_schema()
    seed(url, items, people)
    client = signed_in(app, settings, "olga", "operatore")
    pages = {
        "queue (first page)": ["/console/revisione"],
        "queue (page 100, filtered by kind)": ["/console/revisione?tipo=adult&pagina=100"],
        "queue (filtered by reason)": ["/console/revisione?motivo=spam_flagged"],
        "directory search (surname)": [f"/console/rubrica?q={s}" for s in SURNAMES],
        "directory search (address)": [
            f"/console/rubrica?q={i}@famiglie" for i in range(1, people, max(1, people // 50))
        ],
    }
    results = [time_page(client, database, name, paths, samples) for name, paths in pages.items()]
    client.close()
    app.close()
    return results


def time_page(
    client: TestClient, database: str, name: str, paths: list[str], samples: int
) -> PageResult:
    """`samples` GETs of `paths` in turn (after three to warm up), in milliseconds."""
    for path in paths[:3]:
        assert client.get(path).status_code == 200, path
    times = []
    for n in range(samples):
        started = time.perf_counter()
        answer = client.get(paths[n % len(paths)])
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200
    ordered = sorted(times)
    return PageResult(
        database,
        name,
        samples,
        round(statistics.median(ordered), 1),
        round(ordered[int(0.95 * (samples - 1))], 1),
        round(ordered[int(0.99 * (samples - 1))], 1),
        round(ordered[-1], 1),
    )


def signed_in(app: App, settings: Settings, name: str, role: str) -> TestClient:
    """A console client signed in as a new account `name` with `role`."""
    app.desks.staff.add(name, role, PASSWORD, Actor("bench", "cli"))
    client = TestClient(
        create_web_app(app, settings), base_url="https://localhost", follow_redirects=False
    )
    page = client.get("/console/accesso").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = client.post(
        "/console/accesso", data={"csrf_token": csrf, "nome": name, "password": PASSWORD}
    )
    assert signed.status_code == 303, signed.text
    return client


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main(argv: list[str] | None = None) -> list[PageResult]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    items, people = (500, 1_000) if args.smoke else (10_000, 20_000)
    results: list[PageResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += measure(f"sqlite:///{tmp}/bench.db", "sqlite", items, people, args.samples)
    pg = os.environ.get("PG_TEST_URL")
    if pg and not args.smoke:
        _reset_postgres(pg)
        results += measure(pg, "postgresql", items, people, args.samples)
    write(
        results,
        args.output,
        "console_pages_smoke" if args.smoke else "console_pages",
        items,
        people,
    )
    return results


def write(results: list[PageResult], out: Path, stem: str, items: int, people: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {when} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{items:,} pending review items, {people:,} people; server time per page "
        "in process (ASGI app, session check, desk, database, template), target p95 < 100 ms."
    )
    lines = [
        header,
        "",
        "| database | page | samples | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.database} | {r.page} | {r.samples} | {r.p50_ms} | {r.p95_ms} | "
        f"{r.p99_ms} | {r.max_ms} |"
        for r in results
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(
        json.dumps(
            {
                "measured": when,
                "items": items,
                "people": people,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
