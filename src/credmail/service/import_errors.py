"""Why a directory import writes nothing: DirectoryError lists every bad line of a file;
ImportRefused refuses the import as a whole in one line (a file unreadable, too large, of no
known kind), naming the file, in English for the terminal and in Italian for the console."""

from __future__ import annotations

# what each kind of file is called in a refusal: (English, Italian)
KIND_NAMES = {
    "xls": (".xls", "Excel 97-2003 (.xls)"),
    "xlsx": (".xlsx", "Excel (.xlsx)"),
    "text": ("CSV", "CSV"),
}


class DirectoryError(Exception):
    """The file cannot be imported; `problems` lists every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ImportRefused(DirectoryError):
    """The import is refused as a whole: one line, naming the file when one is to blame."""

    def __init__(self, reason: str, italian: str, file: str | None = None) -> None:
        super().__init__([f"{file}: {reason}" if file else reason])
        self.reason, self.italian, self.file = reason, italian, file

    def named(self, file: str) -> ImportRefused:
        """The same refusal naming `file` (one that already names a file is kept)."""
        return self if self.file else ImportRefused(self.reason, self.italian, file)

    @property
    def for_staff(self) -> str:
        """The Italian line the console shows."""
        return f"{self.file}: {self.italian}" if self.file else self.italian


def unreadable(kind: str, exc: BaseException, file: str | None = None) -> ImportRefused:
    """A parser's failure as one line: the kind of file expected and the parser's words."""
    english, italian = KIND_NAMES[kind]
    words = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ImportRefused(
        f"not a readable {english} file ({words})",
        f"non è un file {italian} leggibile: è danneggiato o non è quello atteso",
        file,
    )


def too_many_rows(max_rows: int, file: str | None = None) -> ImportRefused:
    return ImportRefused(
        f"more than {max_rows:,} rows (directory.max_import_rows)",
        f"il file ha più di {italian_number(max_rows)} righe, il massimo ammesso "
        "per un'importazione",
        file,
    )


def italian_number(n: int) -> str:
    """12345 -> '12.345'."""
    return f"{n:,}".replace(",", ".")
