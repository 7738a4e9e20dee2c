"""What an oversized register file costs before it is refused: peak memory (RSS), time and
the line the command prints, for `credmail directory import FILE --dry-run`.

    python -m bench.import_limits --label after --raised 100 1024   # this tree
    python -m bench.import_limits --src OTHER/src --label before    # another tree
    python -m bench.import_limits --rows 2000000 --timeout 300 --files big.xlsx

It writes, in a temporary directory, a guardian sheet as Excel writes it (.xlsx with a
shared-strings table, every name, address and tax code distinct) of --rows rows, the same
rows as CSV, a legacy .xls as full as the format allows (65,535 rows), and files of a
large school's size (3,500 rows, .xlsx and CSV). With --raised MIB (a tree that has the
limits) the big files run again with directory.max_import_bytes raised, to show what the
other bounds do once the size no longer stops them: rows streamed up to max_import_rows,
parts of the .xlsx bounded as they unpack. Each run is a subprocess under /usr/bin/time
-v, killed after --timeout seconds (its peak RSS then read from /proc before the kill).

Writes bench/results/import_limits-<label>.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

from tests.support.register_files import GUARDIAN_HEADER
from tests.support.wiring import IDENTITY

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent

_XML = '<?xml version="1.0" encoding="UTF-8"?>'
_OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PACKAGE = "http://schemas.openxmlformats.org/package/2006"
_RELATION = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    f'{_XML}<Types xmlns="{_PACKAGE}/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OFFICE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_OFFICE}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_OFFICE}.sharedStrings+xml"/>'
    "</Types>"
)
_RELS = (
    f'{_XML}<Relationships xmlns="{_PACKAGE}/relationships">'
    f'<Relationship Id="rId1" Type="{_RELATION}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Tutori" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'{_XML}<Relationships xmlns="{_PACKAGE}/relationships">'
    f'<Relationship Id="rId1" Type="{_RELATION}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_RELATION}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def guardian_rows(rows: int) -> Iterator[list[str]]:
    """A guardian sheet: the header, then `rows` guardians, each name and code distinct."""
    yield list(GUARDIAN_HEADER)
    for n in range(rows):
        yield [
            f"PPL{n:09d}X{n % 10}Z",
            "3331234567",
            "",
            f"genitore{n}@example.org",
            "MADRE" if n % 2 else "PADRE",
            f"COGNOME{n}",
            f"NOME{n % 997}",
            f"GNT{n:09d}K{n % 7}Y",
            "",
        ]


def write_xlsx(path: Path, rows: int) -> None:
    """An .xlsx as Excel writes it: every text cell points into the shared-strings table.
    Streamed into the ZIP, so the generator itself stays small."""
    strings: dict[str, int] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _RELS)
        book.writestr("xl/workbook.xml", _WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
            for line, cells in enumerate(guardian_rows(rows), start=1):
                out = [f'<row r="{line}">']
                for value in cells:
                    if value:
                        index = strings.setdefault(value, len(strings))
                        out.append(f'<c t="s"><v>{index}</v></c>')
                    else:
                        out.append("<c/>")
                out.append("</row>")
                sheet.write("".join(out).encode())
            sheet.write(b"</sheetData></worksheet>")
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as table:
            table.write(f'{_XML}<sst xmlns="{_MAIN}">'.encode())
            for text in strings:
                table.write(f"<si><t>{escape(text)}</t></si>".encode())
            table.write(b"</sst>")


def write_xls(path: Path, rows: int) -> None:
    """A legacy .xls (xlwt): the format itself stops at 65,536 rows."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Tutori")
    for line, cells in enumerate(guardian_rows(min(rows, 65_535))):
        for column, value in enumerate(cells):
            sheet.write(line, column, value)
    book.save(str(path))


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        for cells in guardian_rows(rows):
            out.write(";".join(cells) + "\r\n")


def measure(
    src: Path, file: Path, workdir: Path, env_extra: dict[str, str], timeout: int
) -> dict[str, object]:
    """`credmail directory import FILE --dry-run` under /usr/bin/time -v."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{src}{os.pathsep}{ROOT}",
        "HOME": str(workdir),
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{workdir / 'bench.db'}",
        **env_extra,
    }
    code = "from credmail.entrypoints.cli import run; raise SystemExit(run())"
    command = ["/usr/bin/time", "-v", sys.executable, "-c", code, "directory", "import"]
    started = time.monotonic()
    with subprocess.Popen(
        [*command, str(file), "--dry-run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as run:
        try:
            stdout, stderr = run.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            peak = _peak_rss_kib(run.pid)  # what the kernel saw, before the kill
            run.kill()
            run.communicate()
            return {
                "file": file.name,
                "mib": round(file.stat().st_size / 2**20, 1),
                "seconds": round(time.monotonic() - started, 1),
                "exit": "timeout",
                "peak_rss_mib": round(peak / 1024) if peak else None,
                "said": f"still reading after {timeout} s, killed",
            }
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    said = [
        line
        for line in stderr.splitlines()
        if line and not line.startswith(("\t", "Command being timed", "Command exited"))
    ]
    return {
        "file": file.name,
        "mib": round(file.stat().st_size / 2**20, 1),
        "seconds": round(time.monotonic() - started, 1),
        "exit": run.returncode,
        "peak_rss_mib": round(int(rss.group(1)) / 1024) if rss else None,
        "said": ("Traceback … " + said[-1])
        if "Traceback" in stderr
        else (said or stdout.splitlines() or [""])[-1],
    }


def _peak_rss_kib(pid: int) -> int | None:
    """The peak RSS (VmHWM) of the command /usr/bin/time runs as `pid`'s child."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        status = Path(f"/proc/{children[0]}/status").read_text()
    except (OSError, IndexError):
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the credmail tree's src")
    parser.add_argument("--label", default="after")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--files", nargs="*", help="only these of the generated files")
    parser.add_argument(
        "--raised",
        type=int,
        nargs="*",
        default=[],
        metavar="MIB",
        help="also run the big files with max_import_bytes raised to MIB (a tree with limits)",
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = {
            "school.xlsx": 3_500,
            "school.csv": 3_500,
            "big.xlsx": args.rows,
            "big.csv": args.rows,
            "big.xls": 65_535,
        }
        if args.files:
            files = {name: rows for name, rows in files.items() if name in args.files}
        writers = {".xlsx": write_xlsx, ".csv": write_csv, ".xls": write_xls}
        for name, rows in files.items():
            writers[Path(name).suffix](workdir / name, rows)
        runs: list[tuple[str, dict[str, str]]] = [("defaults", {})]
        for mib in args.raised:
            bytes_env = {"CREDMAIL_DIRECTORY__MAX_IMPORT_BYTES": str(mib * 2**20)}
            runs.append((f"max_import_bytes {mib} MiB", bytes_env))
        for setting, env in runs:
            for name in files:
                if setting != "defaults" and not name.startswith("big"):
                    continue
                result = measure(args.src, workdir / name, workdir, env, args.timeout)
                result["limits"] = setting
                results.append(result)
                print(json.dumps(result, ensure_ascii=False), flush=True)
    load = os.getloadavg()
    report = {
        "label": args.label,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {load[0]:.1f}",
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"import_limits-{args.label}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    print(f"\n{args.label}: {report['machine']}\n")
    print("| file | MiB | limits | exit | seconds | peak RSS MiB | says |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['file']} | {r['mib']} | {r['limits']} | {r['exit']} | {r['seconds']} "
            f"| {r['peak_rss_mib']} | {r['said']} |"
        )


if __name__ == "__main__":
    main()
