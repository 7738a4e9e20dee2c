"""`credmail status --all CONFIG_DIR`: one line per school on a machine that runs many
(one `<school>.toml` per instance, as the systemd template units read them).

Each school's own status desk answers; a school whose configuration or database fails is a
line saying why, and makes the exit non-zero like a stale one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from credmail.bootstrap import bootstrap, database_file_missing, explain
from credmail.config import ConfigError, load_settings

EXIT_UNHEALTHY = 1
EXIT_NO_SCHOOLS = 2


def status_all(directory: Path, as_json: bool, out: TextIO) -> int:
    configs = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    if not configs:
        print(f"credmail: no school configuration (*.toml) in {directory}", file=sys.stderr)
        return EXIT_NO_SCHOOLS
    # every school is its own file: CREDMAIL_* variables of this shell apply to none of them
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    schools = [school_status(path, environ) for path in configs]
    if as_json:
        print(json.dumps(schools), file=out)
    else:
        width = max(len(s["name"]) for s in schools)
        for school in schools:
            print(_line(school, width), file=out)
    return 0 if all(s["healthy"] for s in schools) else EXIT_UNHEALTHY


def school_status(path: Path, environ: dict[str, str]) -> dict[str, Any]:
    name = path.stem
    try:
        settings = load_settings(path, environ=environ)
    except ConfigError as exc:
        return {"name": name, "healthy": False, "error": f"config error: {exc}"}
    if database_file_missing(settings):
        return _broken(name, settings.replies.school_name, "database does not exist")
    app = bootstrap(settings)
    try:
        if not app.schema_current():
            return _broken(name, settings.replies.school_name, "database not migrated")
        report = app.desks.status.report()
    except Exception as exc:
        line = explain(exc, settings)
        if line is None:
            line = f"{type(exc).__name__}"
        return _broken(name, settings.replies.school_name, line)
    finally:
        app.close()
    details = report.as_json()
    sign_in = details["sign_in"]
    return {
        "name": name,
        "school": settings.replies.school_name,
        "healthy": report.healthy,
        "error": None,
        "last_sync": details["last_sync"],
        "last_sync_age_seconds": details["last_sync_age_seconds"],
        "review_pending": details["review_pending"],
        "outbox": details["outbox"],
        "delivery": _delivery(details, report.failing_since_sent),
        "sign_in": "password" if sign_in is None else sign_in["status"],
        "status": details,
    }


def _broken(name: str, school: str, error: str) -> dict[str, Any]:
    return {"name": name, "school": school, "healthy": False, "error": error}


def _delivery(details: dict[str, Any], failing_since_sent: bool) -> str:
    if details["delivery_paused"]:
        return "PAUSED"
    if not details["delivery_ok"]:
        return "FAILING"
    return "RETRYING" if failing_since_sent else "ok"


def _line(school: dict[str, Any], width: int) -> str:
    name = school["name"].ljust(width)
    if school["error"] is not None:
        return f"{name}  FAILED  {school['error']}"
    age = school["last_sync_age_seconds"]
    synced = "never" if age is None else f"{age:.0f} s ago"
    counts = school["outbox"] or {}
    outbox = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"
    return (
        f"{name}  {'ok' if school['healthy'] else 'STALE':<6}  last sync {synced}"
        f"; review pending {school['review_pending']}"
        f"; outbox {outbox}, delivery {school['delivery']}"
        f"; sign-in {school['sign_in']}"
    )
