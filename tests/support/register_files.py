"""Files that imitate the register's exports, built by the tests (no real school's data).

* `classeviva_xls`: ClasseViva's student list, legacy BIFF8 .xls written with xlwt, with the
  quirks of the real thing: a title row above the header, the misspelt `Poszione`, ids and
  CAPs stored as numbers, birth dates as date cells, residence/phone/citizenship columns,
  and an OLE header that makes strict xlrd report "Workbook corruption: seen[0] == 4".
* `guardians_xlsx`: a Nuvola-style guardian sheet, one row per guardian (openpyxl).
* `students_csv_cp1252`: the student list saved by Excel in Italy: `;` and Windows-1252.
* `families_csv`: one row per pupil with genitore1…/genitore2… columns (giuaschool style).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

XLS_HEADER = (
    "Id Alunno", "Cognome", "Nome", "Sesso", "Data Nascita", "Luogo Nascita", "Codice Fiscale",
    "Descr Cittadinanza", "Indirizzo Residenza", "Cap Residenza", "Telefono", "Email",
    "Email 2", "Anno Corso", "Sezione", "Classe", "Stato Alunno", "Data Fine", "Poszione",
)  # fmt: skip
GUARDIAN_HEADER = (
    "CODICE FISCALE ALUNNO *", "CELLULARE", "CELLULARE 2 / TELEFONO FISSO", "EMAIL TUTORE",
    "RUOLO DEL TUTORE *", "COGNOME TUTORE *", "NOME TUTORE *", "CODICE FISCALE TUTORE",
    "ORDINAMENTO",
)  # fmt: skip
FAMILY_HEADER = (
    "cognome", "nome", "sesso", "dataNascita", "codiceFiscale", "citta", "classe", "username",
    "email", "genitore1Cognome", "genitore1Nome", "genitore1CodiceFiscale", "genitore1Telefono",
    "genitore1Username", "genitore1Email", "genitore2Cognome", "genitore2Nome",
    "genitore2CodiceFiscale", "genitore2Telefono", "genitore2Username", "genitore2Email",
)  # fmt: skip


@dataclass(frozen=True)
class Pupil:
    pupil_id: int
    last: str
    first: str
    born: date | str  # a string for a malformed date as typed
    tax_code: str
    year: int = 2
    section: str = "B"
    status: str = "Frequentante"
    end: str = ""
    email: str = ""
    sex: str = "M"  # the register's Sesso
    code: str = ""  # the register's login code (a `Codice Utente` column when any has one)


@dataclass(frozen=True)
class Guardian:
    pupil_tax_code: str
    email: str
    role: str
    last: str
    first: str
    tax_code: str = ""
    code: str = ""  # the register's login code (a `CODICE UTENTE TUTORE` column when any)


def classeviva_xls(pupils: Sequence[Pupil], *, quirk: bool = True) -> bytes:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Alunni")
    dates = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    sheet.write(0, 0, "Elenco alunni - RMII0063 - a.s. 2025/26")  # a title row above the header
    codes = any(p.code for p in pupils)
    for col, name in enumerate(XLS_HEADER + (("Codice Utente",) if codes else ())):
        sheet.write(1, col, name + (" " if name == "Nome" else ""))  # a trailing space, as found
    for row, p in enumerate(pupils, start=2):
        values: list[object] = [
            p.pupil_id, p.last.upper(), p.first.upper(), p.sex, p.born, "ROMA", p.tax_code,
            "ITALIANA", "VIA MATT? TRUCCO 1", 132, "3331234567", p.email, "", p.year,
            p.section, str(p.year), p.status, p.end, 1, *([p.code] if codes else []),
        ]  # fmt: skip
        for col, value in enumerate(values):
            if isinstance(value, date):
                sheet.write(row, col, value, dates)
            else:
                sheet.write(row, col, value)
    out = io.BytesIO()
    book.save(out)
    return ole_quirk(out.getvalue()) if quirk else out.getvalue()


def ole_quirk(data: bytes) -> bytes:
    """Point the root entry's short-stream container at the Workbook's first sector, as
    ClasseViva's files do: strict readers stop with 'Workbook corruption', the sheet is
    intact."""
    patched = bytearray(data)
    sector = 1 << struct.unpack_from("<H", patched, 30)[0]
    directory = 512 + struct.unpack_from("<i", patched, 48)[0] * sector
    workbook = directory + 128  # xlwt writes Root Entry, then Workbook
    assert patched[workbook : workbook + 16].decode("utf-16-le") == "Workbook"
    first_sector = struct.unpack_from("<i", patched, workbook + 116)[0]
    struct.pack_into("<iI", patched, directory + 116, first_sector, 64)
    return bytes(patched)


def guardians_xlsx(guardians: Sequence[Guardian]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    codes = any(g.code for g in guardians)
    sheet.append(GUARDIAN_HEADER + (("CODICE UTENTE TUTORE",) if codes else ()))
    for g in guardians:
        row = [g.pupil_tax_code, "3331234567", "", g.email, g.role, g.last, g.first, g.tax_code]
        sheet.append([*row, "", *([g.code] if codes else [])])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def students_csv_cp1252(pupils: Sequence[Pupil]) -> bytes:
    lines = [";".join(h for h in XLS_HEADER if h != "Poszione")]
    for p in pupils:
        born = p.born.strftime("%d/%m/%Y") if isinstance(p.born, date) else p.born
        lines.append(
            ";".join(
                (
                    f"{p.pupil_id:07d}", p.last, p.first, "F", born, "Roma", p.tax_code,
                    "ITALIANA", "Via Roma 1", "00132", "", p.email, "", str(p.year),
                    p.section, str(p.year), p.status, p.end,
                )
            )
        )  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def families_csv(rows: Sequence[tuple[Pupil, Sequence[Guardian]]]) -> bytes:
    lines = [",".join(FAMILY_HEADER)]
    for p, parents in rows:
        born = p.born.strftime("%d/%m/%Y") if isinstance(p.born, date) else p.born
        fields = [p.last, p.first, p.sex, born, p.tax_code, "Roma", f"{p.year}{p.section}", p.code]
        fields.append("")
        for n in range(2):
            g = parents[n] if n < len(parents) else None
            fields += [g.last, g.first, g.tax_code, "+39333", g.code, g.email] if g else [""] * 6
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode("utf-8")
