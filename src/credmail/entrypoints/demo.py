"""`credmail demo`: the whole flow on embedded defaults, with nothing else installed."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from credmail.bootstrap import App, bootstrap
from credmail.config import Settings, load_settings
from credmail.core.parse import parse_message
from credmail.entrypoints.daemon import run_once
from credmail.logs import configure_logging
from credmail.samples import AUTHSERV_ID, SAMPLES, directory_csv
from credmail.service.desks import Actor

DEMO_CONFIG = """\
# The demo's configuration, written by `credmail demo` (the demo school's identity:
# real use sets its own, there are no defaults).
[mailbox]
kind = "maildir"
maildir_path = "{workdir}/Maildir"
process_existing = true

[smtp]
from_address = "segreteria@istitutostanga.edu.it"
outbox_dir = "{workdir}/sent"

[links]
base_url = "https://registro.istitutostanga.edu.it"

[replies]
school_name = "Istituto Stanga"

[database]
url = "sqlite:///{workdir}/credmail.db"

[auth]
trusted_authserv_ids = ["{authserv_id}"]

[logging]
level = "warning"
"""


def demo_settings(workdir: Path) -> Settings:
    """Write the demo's config file into `workdir` and load it (no environment)."""
    config = workdir / "credmail.toml"
    config.write_text(DEMO_CONFIG.format(workdir=workdir, authserv_id=AUTHSERV_ID))
    return load_settings(config, environ={})


def seed_maildir(root: Path) -> dict[str, str]:
    """Write every sample into the Maildir; returns sample name -> Message-ID."""
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = {}
    for number, sample in enumerate(SAMPLES, start=1):
        raw = sample.to_bytes()
        ids[sample.name] = parse_message(raw).message_id or ""
        (root / "new" / f"{1700000000 + number}.demo{number:03d}.credmail").write_bytes(raw)
    return ids


def credmail_command() -> str:
    """The `credmail` that runs this demo: the venv's bin is often not on PATH."""
    here = Path(sys.executable).parent / "credmail"
    found = shutil.which("credmail")
    return "credmail" if found and Path(found) == here else str(here)


def run_demo(workdir: Path | None, keep: bool = False) -> int:
    """Run the demo in `workdir` (kept) or a temporary folder (removed unless `keep`)."""
    temporary = workdir is None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="credmail-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _demo(workdir, keep or not temporary)
    finally:
        if temporary and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _demo(workdir: Path, kept: bool) -> None:
    settings = demo_settings(workdir)
    configure_logging("warning", "console")
    app = bootstrap(settings)
    app.upgrade_schema()
    csv_path = workdir / "directory.csv"
    csv_path.write_bytes(directory_csv(date.today()))
    imported = app.desks.directory.import_csv(
        csv_path.read_bytes(), Actor("demo", "cli"), prune=False, dry_run=False
    )
    message_ids = seed_maildir(workdir / "Maildir")
    result = run_once(app)
    print(f"Directory: {imported.summary.as_text()}")
    print(_summary(result) + "\n")
    _print_table(app, message_ids)
    app.close()
    if not kept:
        print(f"\nThe demo files in {workdir} are removed; `credmail demo --keep` keeps them.")
        return
    print(f"\nThe demo files are in {workdir} (delete the folder when done):")
    print(f"  replies, as .eml files: {workdir / 'sent'}")
    print("  the review queue:")
    print(f"    {credmail_command()} --config {workdir / 'credmail.toml'} review list")


def _summary(result: dict[str, object]) -> str:
    handled = result["handled"]
    assert isinstance(handled, dict)
    outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(handled.items()))
    return (
        f"Run: {result['scanned']} messages read; {outcomes or 'none handled'}; "
        f"{result['sent']} replies written, {result['failed']} failed"
    )


def _print_table(app: App, message_ids: dict[str, str]) -> None:
    traces = app.desks.trace.of(list(message_ids.values()))
    rows = [("case", "subject", "outcome", "reply or reasons")]
    for sample in SAMPLES:
        trace = traces[message_ids[sample.name]]
        if trace.outcome is None:
            rows.append((sample.name, sample.subject, "untouched", "-"))
            continue
        detail = trace.reply or ", ".join(trace.reasons) or "-"
        rows.append((sample.name, sample.subject, trace.outcome, detail))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(4)]
    for row in rows:
        print("  ".join(cell[:40].ljust(width) for cell, width in zip(row, widths, strict=True)))
