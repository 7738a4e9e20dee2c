"""`credmail directory import` and `directory mapping init`: files or standard input read
alike (bounded by directory.max_import_bytes), handed to the directory desk, and its answer
printed; a refusal is one line naming the file, and the exit status is 1 whenever nothing
was written, a dry run included."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from credmail.entrypoints.cli_base import EXIT_FAILURE, CommandError, Context

if TYPE_CHECKING:
    from credmail.service.desks import Actor
    from credmail.service.desks.directory import ImportResult


def import_files(args: argparse.Namespace, ctx: Context, actor: Actor) -> int:
    """credmail's CSV or the register's exports, from paths or standard input alike: the
    desk tells them apart by their bytes; --dry-run reports what the real run would do,
    its refusal and exit status included."""
    from credmail.entrypoints.register_report import preview_lines, progress_bar, write_report
    from credmail.service.import_errors import DirectoryError, ImportRefused

    files = [(_input_name(path), _read_input(path, ctx)) for path in args.file]
    desk = ctx.app().desks.directory
    layout = args.format if args.format != "auto" else desk.file_format(*files[0])
    if layout == "credmail":
        if args.csv or args.mapping:
            raise CommandError(
                "--csv and --mapping are for the register's files, not credmail's CSV"
            )
        _describe_csv(*files[0])
    try:
        mapping = _load_mapping(ctx, args.mapping) if args.mapping else None
        with progress_bar(sys.stdout.isatty() and layout != "credmail") as progress:
            done = desk.import_files(
                files,
                actor,
                dry_run=args.dry_run,
                force=args.force,
                prune=args.prune,
                layout=None if args.format == "auto" else args.format,
                mapping=mapping,
                progress=progress,
            )
    except ImportRefused as exc:
        raise CommandError(f"{exc}; nothing imported") from None
    except DirectoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("nothing imported", file=sys.stderr)
        return EXIT_FAILURE
    if done.preview is not None:
        for line in preview_lines(done.preview):
            print(line)
    if args.csv and done.preview is not None:
        try:
            write_report(args.csv, done.preview)
        except OSError as exc:
            raise CommandError(f"cannot write {args.csv}: {exc.strerror}") from None
        print(f"report written to {args.csv}")
    return _import_report(done.result)


def _describe_csv(name: str, data: bytes) -> None:
    """credmail's CSV: the delimiter and encoding found, before any problem is listed."""
    from credmail.service.directory_csv import describe_input
    from credmail.service.import_errors import DirectoryError

    with contextlib.suppress(DirectoryError):  # empty or not text: the import says so
        print(f"{name}: {describe_input(data)}")


def _mapping_path(ctx: Context, name: str) -> Path:
    if name.endswith(".toml") or "/" in name:
        return Path(name).expanduser()
    if not re.fullmatch(r"[\w.-]+", name) or name.startswith("."):
        raise CommandError(f"mapping name {name!r}: use letters, digits, '.', '-' and '_'")
    return ctx.settings.directory.mappings_dir.expanduser() / f"{name}.toml"


def _load_mapping(ctx: Context, name: str) -> Any:
    path = _mapping_path(ctx, name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read mapping {path}: {exc.strerror}") from None
    return ctx.app().desks.directory.read_mapping(name, data)


def mapping_init(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.import_errors import DirectoryError

    data = _read_input(args.file, ctx)
    stem = "mapping" if str(args.file) == "-" else re.sub(r"[^\w.-]", "_", args.file.stem)
    name = args.name or stem or "mapping"
    path = _mapping_path(ctx, name)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists; edit it, or use --force to write it anew")
    try:
        text = ctx.app().desks.directory.mapping_template(_input_name(args.file), data)
    except DirectoryError as exc:
        raise CommandError("; ".join(exc.problems)) from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
    print(f"mapping written to {path}; edit it, then: credmail directory import FILE "
          f"--mapping {name}")  # fmt: skip
    return 0


def _input_name(path: Path) -> str:
    """How messages name an input: its path, or "standard input" for `-`."""
    from credmail.service.import_files import STANDARD_INPUT

    return STANDARD_INPUT if str(path) == "-" else str(path)


def _read_input(path: Path, ctx: Context) -> bytes:
    """`-` is standard input: the wrapper's service user cannot open the admin's files.
    Reading stops one byte past directory.max_import_bytes, and such a file is refused."""
    from credmail.service.import_errors import ImportRefused

    limits = ctx.app().desks.directory.limits
    try:
        data = _read_at_most(path, limits.max_bytes + 1)
        limits.check_size(len(data), _input_name(path))
    except OSError as exc:
        raise CommandError(f"cannot read {_input_name(path)}: {exc.strerror}") from None
    except ImportRefused as exc:
        raise CommandError(f"{exc}; nothing imported") from None
    return data


def _read_at_most(path: Path, size: int) -> bytes:
    if str(path) != "-":
        with path.open("rb") as stream:
            return stream.read(size)
    binary: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
    if binary is None:  # a text stream without bytes (a test's StringIO)
        return sys.stdin.read(size).encode()
    return binary.read(size)


def _import_report(result: ImportResult) -> int:
    summary, refusal = result.summary, result.refusal
    verb = "would remove" if result.dry_run or refusal else "removed"
    for person in summary.removed_people:
        print(f"{verb}: {person}")
    verb = "would mark inactive" if result.dry_run or refusal else "marked inactive"
    for person in summary.retired_people:
        print(f"{verb}: {person}")
    if refusal:
        dry = "dry run: " if result.dry_run else ""
        print(f"credmail: {dry}{refusal}; nothing imported", file=sys.stderr)
        return EXIT_FAILURE
    prefix = "dry run, nothing written: " if result.dry_run else ""
    print(prefix + summary.as_text())
    return 0
