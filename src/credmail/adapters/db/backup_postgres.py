"""PostgreSQL backup and restore through pg_dump and pg_restore of the school's schema.

The backup is pg_dump's custom format of the one schema credmail's tables live in (the
configured [database] schema, else the role's current schema, usually public), without
owners or grants (a restore belongs to whoever restores it), written into a private
temporary file beside the target and renamed into place. pg_dump reads one snapshot, so
the daemon and the web app keep working meanwhile. pg_dump and pg_restore refuse a server
newer than themselves: that is checked first and said in one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import Engine, text

from credmail.adapters.db.backup_files import (
    POSTGRESQL,
    BackupError,
    discard,
    private_temp,
    publish,
    require_kind,
)
from credmail.adapters.db.engine import schema_of


def backup(engine: Engine, target: Path) -> None:
    """pg_dump of the school's schema at `target` (0600)."""
    pg_dump = _client(engine, "pg_dump")
    schema = school_schema(engine)
    temp = private_temp(target)
    try:
        _run(
            engine,
            [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--schema={schema}"],
            ["--file", str(temp)],
        )
    except BaseException:
        discard(temp)
        raise
    publish(temp, target)


def backup_revision(path: Path, engine: Engine) -> str:
    """The schema revision a pg_dump backup was taken at, read from the dump itself."""
    require_kind(path, POSTGRESQL)
    pg_restore = _client(engine, "pg_restore")
    entries = _contents(pg_restore, path)
    schema = school_schema(engine)
    dumped = {entry.schema for entry in entries if entry.kind == "TABLE"}
    if not any(e.kind == "TABLE" and e.name == "alembic_version" for e in entries):
        raise BackupError(f"{path} is not a credmail backup (no schema revision in it)")
    if dumped != {schema}:
        found = ", ".join(sorted(dumped))
        raise BackupError(f"{path} holds schema {found}; this configuration's is {schema}")
    done = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = done.stdout.partition("FROM stdin;\n")[2].splitlines()
    if done.returncode != 0 or not rows or rows[0] == "\\.":
        raise BackupError(f"{path} is not a credmail backup (no schema revision in it)")
    return rows[0].strip()


def school_schema(engine: Engine) -> str:
    """The configured schema, else the one unqualified names land in (usually public)."""
    configured = schema_of(engine)
    if configured:
        return configured
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_schema()")).scalar() or "public")


def is_empty(engine: Engine) -> bool:
    """True when the school's schema is absent or holds no table: a new install."""
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"),
            {"s": school_schema(engine)},
        ).scalar()
    return not count


def clear(engine: Engine) -> None:
    """Drop every table and sequence of the school's schema (restore --force); the schema
    itself stays (the school's role may not be allowed to create it again)."""
    schema = school_schema(engine)
    with engine.begin() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        ).scalars()
        for table in list(tables):
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE')
        sequences = connection.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = :s"), {"s": schema}
        ).scalars()
        for sequence in list(sequences):
            connection.exec_driver_sql(f'DROP SEQUENCE IF EXISTS "{schema}"."{sequence}"')


def restore(path: Path, engine: Engine) -> None:
    """pg_restore of the backup into the school's (empty) schema, in one transaction."""
    pg_restore = _client(engine, "pg_restore")
    entries = _contents(pg_restore, path)
    schema = school_schema(engine)
    with engine.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        ).first()
    kept = [e.line for e in entries if not (exists and e.kind == "SCHEMA")]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
        listing.write("\n".join(kept) + "\n")
        listing.flush()
        _run(
            engine,
            [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error"],
            ["--single-transaction", "--use-list", listing.name, str(path)],
        )


class _Entry:
    """One line of `pg_restore --list`: `215; 1259 16390 TABLE public ledger owner`."""

    def __init__(self, line: str) -> None:
        self.line = line
        fields = line.split(";", 1)[1].split()
        self.kind = fields[2]
        self.schema = fields[3] if len(fields) > 3 else ""
        self.name = fields[4] if len(fields) > 4 else ""
        if self.kind == "TABLE" and self.schema == "DATA":
            self.kind, self.schema, self.name = "TABLE DATA", fields[4], fields[5]


def _contents(pg_restore: str, path: Path) -> list[_Entry]:
    done = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [pg_restore, "--list", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{path} is not a readable pg_dump backup ({_last_line(done.stderr)})")
    return [_Entry(line) for line in done.stdout.splitlines() if line and not line.startswith(";")]


def _client(engine: Engine, program: str) -> str:
    """The program's path, when its major version is at least the server's."""
    found = shutil.which(program)
    if found is None:
        raise BackupError(
            f"{program} not found; install the PostgreSQL client (Debian: postgresql-client)"
            f" of the server's version or newer"
        )
    version = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [found, "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"\s(\d+)(?:\.\d+)?", version.stdout)
    client = int(match.group(1)) if match else 0
    with engine.connect() as connection:
        server = int(str(connection.execute(text("SHOW server_version_num")).scalar())) // 10000
    if client < server:
        raise BackupError(
            f"{program} is version {client}, older than the server's {server}; install"
            f" postgresql-client-{server} (or newer) and put it first in PATH"
        )
    return found


def _run(engine: Engine, command: list[str], tail: list[str]) -> str:
    """Run a PostgreSQL client against the engine's database; the password goes through
    the environment, never the command line (which `ps` shows)."""
    url = engine.url.set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    connect = url.set(password=None).render_as_string(hide_password=False)
    done = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [*command, f"--dbname={connect}", *tail],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        program = Path(command[0]).name
        raise BackupError(f"{program} failed: {_last_line(done.stderr)}")
    return done.stdout


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no message"])[-1]
