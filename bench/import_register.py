"""How long a register import takes, and how much memory it holds, at a school's size.

    python -m bench.import_register                  # 3,000 students + 6,000 guardians, SQLite
    python -m bench.import_register --postgres URL   # the same on PostgreSQL as well
    python -m bench.import_register --scales 1500,3000,6000

For each scale it writes the register's files (the student list as a legacy .xls with
ClasseViva's OLE quirk, the guardian sheet as .xlsx), then times, through the directory
desk as the CLI calls it: the preview (read, join, problems, diff) and the apply (one
transaction), first into an empty directory and again as a refresh of the same school.
Peak Python memory (tracemalloc) is reported per phase; "flat" means it grows with the
directory (the records must be held for one transaction), not with anything else.

Writes bench/results/import_register.json and bench/results/import_register.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from credmail.adapters.db.engine import upgrade
from credmail.bootstrap import bootstrap
from credmail.config import load_settings
from credmail.service.desks import Actor
from tests.support.register_files import Guardian, Pupil, classeviva_xls, guardians_xlsx
from tests.support.wiring import IDENTITY

RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def school(students: int) -> tuple[bytes, bytes]:
    """`students` pupils and two guardians each (6,000 guardian rows for 3,000 pupils)."""
    pupils, guardians = [], []
    for n in range(students):
        tax = f"PPL{n:08d}X{n % 10}Z{n % 7}"[:16].ljust(16, "K")
        pupils.append(
            Pupil(
                1_000_000 + n,
                f"Cognome{n}",
                f"Nome{n}",
                date(2010, 1 + n % 12, 1),
                tax,
                year=1 + n % 5,
                section="ABCDE"[n % 5],
            )
        )
        family = n
        for role, first in (("PADRE", "Padre"), ("MADRE", "Madre")):
            guardians.append(
                Guardian(
                    tax,
                    f"{first.lower()}{family}@example.org",
                    role,
                    f"Cognome{family}",
                    f"{first}{family}",
                    f"G{role[0]}{family:09d}XXXX"[:16],
                )
            )
    return classeviva_xls(pupils), guardians_xlsx(guardians)


def measured(call: Callable[[], T], trace: bool) -> tuple[T, float, float]:
    """The call's result, its seconds, and (when `trace`) its peak Python memory in MiB;
    tracing slows Python several times, so times come from untraced runs."""
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
    if trace:
        tracemalloc.stop()
    return result, seconds, peak


def run(url: str, students: int, trace: bool = False) -> dict[str, Any]:
    xls, xlsx = school(students)
    env = {**IDENTITY, "CREDMAIL_DATABASE__URL": url}
    app = bootstrap(load_settings(None, env))
    upgrade(app.engine)
    desk, actor = app.desks.directory, Actor("bench", "cli")
    files = [("alunni.xls", xls), ("tutori.xlsx", xlsx)]
    out: dict[str, Any] = {
        "students": students,
        "file_mib": round((len(xls) + len(xlsx)) / 2**20, 2),
    }
    for phase in ("first", "refresh"):
        preview, read_s, read_mib = measured(lambda: desk.preview_register(files), trace)
        result, write_s, write_mib = measured(partial(desk.apply_register, preview, actor), trace)
        assert result.written, result.refusal
        out[phase] = {
            "guardians": preview.counts["guardians"],
            "preview_s": round(read_s, 2),
            "apply_s": round(write_s, 2),
            "total_s": round(read_s + write_s, 2),
            "preview_peak_mib": round(read_mib, 1),
            "apply_peak_mib": round(write_mib, 1),
        }
    app.close()
    return out


def mib(value: float) -> str:
    return str(value) if value else "-"  # memory is traced on SQLite only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="3000", help="student counts, comma-separated")
    parser.add_argument("--postgres", help="a PostgreSQL URL (its tables are reset)")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for students in scales:
            timed = run(f"sqlite:///{tmp}/bench-{students}.db", students)
            traced = run(f"sqlite:///{tmp}/traced-{students}.db", students, trace=True)
            for phase in ("first", "refresh"):
                for key in ("preview_peak_mib", "apply_peak_mib"):
                    timed[phase][key] = traced[phase][key]
            runs.append({"database": "sqlite", **timed})
            print(runs[-1])
    if args.postgres:
        from sqlalchemy import create_engine, text

        for students in scales:
            engine = create_engine(args.postgres)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            runs.append({"database": "postgresql", **run(args.postgres, students)})
            print(runs[-1])
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_register.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# Register import benchmark",
        "",
        f"{doc['when']}, {doc['machine']}. `python -m bench.import_register`.",
        "Students as a legacy .xls, two guardians each as .xlsx; preview = read + join + problems"
        " + diff, apply = one transaction; peak = tracemalloc peak of the phase (a separate,"
        " traced run on SQLite; times come from untraced runs).",
        "",
        "| database | students | guardians | phase | preview s | apply s | total s "
        "| preview peak MiB | apply peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        for phase in ("first", "refresh"):
            p = r[phase]
            lines.append(
                f"| {r['database']} | {r['students']} | {p['guardians']} | {phase} "
                f"| {p['preview_s']} | {p['apply_s']} | {p['total_s']} "
                f"| {mib(p['preview_peak_mib'])} | {mib(p['apply_peak_mib'])} |"
            )
    (RESULTS / "import_register.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
