"""Render a register import's preview: lines for the terminal, a CSV for the secretariat,
and a progress bar while large files are read (only on a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from credmail.entrypoints.csv_output import write_spreadsheet
from credmail.service.desks.directory import RegisterPreview
from credmail.service.register_import import Progress

SHOWN = 20  # changes listed per kind before "… and N more"


def preview_lines(preview: RegisterPreview) -> Iterator[str]:
    for info in preview.files:
        yield (
            f"{info.name}: {info.description}; layout {info.layout}, header on line "
            f"{info.header_line}, {info.rows} rows"
        )
        if info.ignored_columns:
            yield f"  not read (not needed): {', '.join(info.ignored_columns)}"
    c = preview.counts
    yield (
        f"students {c['students']} ({c['active_students']} enrolled, "
        f"{c['new_students']} new), guardians {c['guardians']}, addresses {c['addresses']}"
    )
    renamed = f", renamed {c['renamed']} (login codes now given)" if c["renamed"] else ""
    yield (
        f"since the last import: added {c['added']}{renamed}, changed addresses "
        f"{c['address_changed']}, left {c['left']}, back {c['returned']}"
    )
    for kind in ("renamed", "address_changed", "left", "returned"):
        changes = preview.changed(kind)
        for change in changes[:SHOWN]:
            detail = f": {change.detail}" if change.detail else ""
            yield f"  {kind}: {change.username} ({change.role}, {change.name}){detail}"
        if len(changes) > SHOWN:
            yield f"  {kind}: … and {len(changes) - SHOWN} more (see --csv)"
    yield f"problems: {len(preview.problems)}"
    for problem in preview.problems:
        yield f"  {problem.as_text()}"


def write_report(path: Path, preview: RegisterPreview) -> None:
    """The same report as rows (UTF-8 with BOM and ';', as Excel in Italy opens it)."""
    write_spreadsheet(path, preview.report_rows())


@contextmanager
def progress_bar(on_terminal: bool) -> Iterator[Progress | None]:
    """A progress bar (tqdm) over the rows read, on a terminal only (None elsewhere)."""
    if not on_terminal:
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc="reading rows", unit=" rows", leave=False) as bar:

        def advance(done: int, total: int | None) -> None:
            if total != bar.total:
                bar.total = total
            bar.update(done - bar.n)  # redrawn at most ten times a second

        yield advance
