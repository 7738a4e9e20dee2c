"""Register tasks in bulk (issue 28, item 7): 1,200 open tasks from about 900 families
(a third of them with two children), on SQLite and PostgreSQL.

    python -m bench.bulk_tasks                # SQLite and PostgreSQL ($PG_TEST_URL)
    python -m bench.bulk_tasks --smoke        # 120 tasks, SQLite

Measures, through the whole ASGI app in process (Starlette's TestClient): the task page
(first page, a later page, one class), the CSV export of every open task, and marking
every open task done at once ("tutte quelle filtrate": 25 families per transaction, one
audit entry per task, one mail per address queued), with the longest transaction of it.
Records the machine's load (`uptime`) before and after. Writes bench/results/bulk_tasks.md
and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine, func, insert, select
from starlette.testclient import TestClient

from bench.console_pages import NAMES, PASSWORD, RESULTS, SURNAMES, _reset_postgres
from credmail.adapters.db.models import (
    AuditRow,
    EmailRow,
    GuardianshipRow,
    OutboxRow,
    PersonRow,
    RegisterTaskRow,
)
from credmail.bootstrap import App, bootstrap
from credmail.config import load_settings
from credmail.service.desks import Actor
from credmail.web.app import create_web_app
from tests.support.wiring import IDENTITY

CLASSES = [f"{year}{section}" for year in range(1, 6) for section in "ABCD"]


@dataclass
class Result:
    database: str
    tasks: int
    families: int
    pages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    csv_ms: float = 0.0
    csv_rows: int = 0
    all_done_ms: float = 0.0
    transactions: int = 0
    longest_transaction_ms: float = 0.0
    mails_queued: int = 0
    audit_entries: int = 0
    load_before: str = ""
    load_after: str = ""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def seed(url: str, tasks: int) -> int:
    """Guardians with one address each, their students (one or two) with a class, and an
    open task per student at the guardian's address; the number of families."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    people: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    person_id, family = 0, 0
    while len(rows) < tasks:
        family += 1
        person_id += 1
        guardian = person_id
        address = f"{NAMES[family % len(NAMES)].lower()}.{family}@famiglie.example.org"
        people.append(_person(guardian, f"G{guardian:06}", "guardian", family, None))
        emails.append(
            {"person_id": guardian, "position": 0, "address": address, "address_key": address}
        )
        for _child in range(2 if family % 3 == 0 else 1):
            person_id += 1
            username = f"S{person_id:06}"
            people.append(_person(person_id, username, "student", family, CLASSES[person_id % 20]))
            links.append({"guardian_id": guardian, "student_id": person_id})
            at = now - timedelta(hours=len(rows) % 96)
            rows.append(_task(len(rows), username, family, address, at))
    with engine.begin() as conn:
        conn.execute(insert(cast(Table, PersonRow.__table__)), people)
        conn.execute(insert(cast(Table, EmailRow.__table__)), emails)
        conn.execute(insert(cast(Table, GuardianshipRow.__table__)), links)
        conn.execute(insert(cast(Table, RegisterTaskRow.__table__)), rows[:tasks])
    engine.dispose()
    return family


def _person(
    i: int, username: str, role: str, family: int, class_name: str | None
) -> dict[str, Any]:
    return {
        "id": i,
        "username": username,
        "role": role,
        "first_name": NAMES[i % len(NAMES)],
        "last_name": SURNAMES[family % len(SURNAMES)],
        "birth_date": date(2014, 1, 1) if role == "student" else None,
        "class_name": class_name,
        "language": None,
        "new_student": True,
        "active": True,
    }


def _task(n: int, username: str, family: int, address: str, at: datetime) -> dict[str, Any]:
    return {
        "selector": f"sel{n:08}",
        "username": username,
        "purpose": "student_first_access",
        "role": "student",
        "first_name": NAMES[n % len(NAMES)],
        "last_name": SURNAMES[family % len(SURNAMES)],
        "address": address,
        "address_key": address,
        "requested_at": at - timedelta(days=1),
        "confirmed_at": at,
        "status": "open",
    }


def signed_in(app: App) -> TestClient:
    app.desks.staff.add("olga", "operatore", PASSWORD, Actor("bench", "cli"))
    client = TestClient(
        create_web_app(app, app.settings), base_url="https://localhost", follow_redirects=False
    )
    page = client.get("/console/accesso").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/console/accesso", data={"csrf_token": csrf, "nome": "olga", "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    return client


@contextmanager
def timed_transactions(app: App, spans: list[float]) -> Iterator[None]:
    """Time every unit of work the bulk desk opens (a read or one batch of families)."""
    desk = app.desks.worklist
    real = desk.uow

    @contextmanager
    def one(read_only: bool = False) -> Iterator[Any]:
        started = time.perf_counter()
        with real(read_only) as uow:
            yield uow
        if not read_only:
            spans.append((time.perf_counter() - started) * 1000)

    object.__setattr__(desk, "uow", one)
    try:
        yield
    finally:
        object.__setattr__(desk, "uow", real)


def measure(url: str, database: str, tasks: int, samples: int) -> Result:
    settings = load_settings(None, environ={**IDENTITY, "CREDMAIL_DATABASE__URL": url})
    app = bootstrap(settings)
    app.upgrade_schema()
    result = Result(database, tasks, seed(url, tasks), load_before=uptime())
    client = signed_in(app)
    csrf = client.get("/console/").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    pages = {
        "first page (50 families)": "/console/registro",
        "page 10": "/console/registro?pagina=10",
        "one class": "/console/registro?classe=3B",
    }
    for name, path in pages.items():
        assert client.get(path).status_code == 200, path  # warm up
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        ordered = sorted(times)
        result.pages_ms[name] = {
            "p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        }
    started = time.perf_counter()
    exported = client.get("/console/registro.csv")
    result.csv_ms = round((time.perf_counter() - started) * 1000, 1)
    result.csv_rows = exported.text.count("\r\n") - 1
    spans: list[float] = []
    with timed_transactions(app, spans):
        started = time.perf_counter()
        done = client.post(
            "/console/registro/eseguite", data={"csrf_token": csrf, "quali": "filtrate"}
        )
        result.all_done_ms = round((time.perf_counter() - started) * 1000, 1)
    assert done.status_code == 303, done.text
    result.transactions, result.longest_transaction_ms = len(spans), round(max(spans), 1)
    with app.engine.connect() as conn:
        result.mails_queued = conn.scalar(select(func.count()).select_from(OutboxRow)) or 0
        actions = select(func.count()).select_from(AuditRow).where(AuditRow.action == "task.done")
        result.audit_entries = conn.scalar(actions) or 0
    result.load_after = uptime()
    client.close()
    app.close()
    return result


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tasks = 120 if args.smoke else 1_200
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(measure(f"sqlite:///{tmp}/bench.db", "sqlite", tasks, args.samples))
    pg = os.environ.get("PG_TEST_URL")
    if pg and not args.smoke:
        _reset_postgres(pg)
        results.append(measure(pg, "postgresql", tasks, args.samples))
    write(results, args.output, "bulk_tasks_smoke" if args.smoke else "bulk_tasks")
    return results


def write(results: list[Result], out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {os.cpu_count()} cores, Python {platform.python_version()}; "
        "server time in process (ASGI app, session, desk, database, template).",
        "",
        "| database | tasks | families | first page p50/p95 ms | page 10 p50/p95 ms "
        "| one class p50/p95 ms | CSV of all ms | mark all done ms | transactions "
        "| longest transaction ms | mails queued | audit entries |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        cells = [f"{p['p50']} / {p['p95']}" for p in r.pages_ms.values()]
        lines.append(
            f"| {r.database} | {r.tasks:,} | {r.families:,} | {' | '.join(cells)} | "
            f"{r.csv_ms} | {r.all_done_ms} | {r.transactions} | {r.longest_transaction_ms} | "
            f"{r.mails_queued} | {r.audit_entries} |"
        )
    lines += ["", "Load (`uptime`) before and after each run:", ""]
    lines += [f"- {r.database}: `{r.load_before}` / `{r.load_after}`" for r in results]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    payload = {"measured": when, "results": [asdict(r) for r in results]}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
