"""Where `credmail run --once` spends its time on a backlog: py-spy samples, summed.

    python -m bench.profile --database sqlite --size 1000

Needs py-spy (`pip install py-spy`). Prints the functions with the most own time and the
share of broad areas (email parsing, SQLAlchemy, the database driver, SMTP, IMAP, ...).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

from bench.mix import directory_csv, mailbox
from bench.run import Bench

AREAS = [
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlite3", "sqlite3 driver"),
    ("psycopg", "psycopg driver"),
    ("email/", "email package"),
    ("jinja2", "Jinja2"),
    ("aiosmtplib", "SMTP client"),
    ("imapclient", "IMAP client"),
    ("imaplib", "IMAP client"),
    ("structlog", "logging"),
    ("ssl.py", "sockets"),
    ("socket.py", "sockets"),
    ("asyncio", "asyncio"),
    ("credmail/", "credmail's own code"),
]


def area(frame: str) -> str:
    for needle, name in AREAS:
        if needle in frame:
            return name
    return "other"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="credmail-profile-") as workdir:
        bench = Bench(Path(workdir))
        try:
            db_url = bench.database(args.database, "profile")
            env = bench.env(db_url, mailbox__process_existing="true", mailbox__batch_size="200")
            people = Path(workdir) / "people.csv"
            people.write_bytes(directory_csv(date.today()))
            bench.credmail(env, "directory", "import", str(people))
            bench.fill(mailbox(args.size))
            raw = Path(workdir) / "profile.txt"
            command = [py_spy, "record", "--format", "raw", "--rate", str(args.rate)]
            command += ["--subprocesses"]  # the forked delivery process too
            command += ["--output", str(raw), "--"]
            command += [sys.executable, "-m", "credmail", "run", "--once"]
            subprocess.run(command, env=env, check=True, capture_output=True)
            report(raw.read_text(), args.top)
        finally:
            bench.close()


def report(collapsed: str, top: int) -> None:
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        own[leaf] += count
        areas[area(leaf)] += count
        mine = [f for f in frames if "credmail/" in f]
        ours[mine[-1] if mine else "(outside credmail's frames)"] += count
    print(f"{total} samples of busy threads (waiting on sockets and fsync is not sampled)")
    print("\nown time by area (the leaf frame):")
    for name, count in areas.most_common():
        print(f"  {count / total:6.1%}  {name}")
    print(f"\ntop {top} innermost credmail frames (inclusive of what they call):")
    for frame, count in ours.most_common(top):
        print(f"  {count / total:6.1%}  {frame[:150]}")
    print(f"\ntop {top} leaf frames:")
    for frame, count in own.most_common(top):
        print(f"  {count / total:6.1%}  {frame[:150]}")


if __name__ == "__main__":
    main()
