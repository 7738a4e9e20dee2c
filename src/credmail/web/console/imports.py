"""Rubrica > Importa: the secretariat uploads credmail's CSV or the register's exports (the
student list and the guardian sheet together), sees what would change, and confirms.

The same desk call as `credmail directory import`: the files are told apart by their bytes,
never their names; the preview is the dry run (the refusal of a large retirement included)
and the confirmation re-reads the same bytes. Every refusal is an Italian message on the form
again (400), never a server error."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.desks.directory import DirectoryImport
from credmail.service.desks.staff import StaffSession
from credmail.service.import_errors import DirectoryError, ImportRefused
from credmail.service.import_files import MIB, ImportLimits
from credmail.service.ports import ImportSummary
from credmail.web.console.base import MAX_PART, Console, text_field

MAX_FILES = 4
MAX_UPLOAD_BYTES = 5 * MIB  # the confirmation carries it back as base64, within MAX_PART
assert MAX_UPLOAD_BYTES * 4 // 3 < MAX_PART
TITLE = "Importa la rubrica"

LAYOUT_LABELS = {
    "classeviva": "elenco alunni",
    "guardians": "elenco tutori",
    "families": "elenco alunni con i genitori",
}
PROBLEM_LABELS = {
    "missing_address": "indirizzo mancante",
    "malformed_address": "indirizzo non valido, scartato",
    "pec_address": "indirizzo PEC, che spesso rifiuta la posta ordinaria",
    "shared_by_parents": "lo stesso indirizzo per più tutori dello stesso alunno",
    "shared_by_families": "un indirizzo condiviso da famiglie diverse",
    "no_guardian_address": "nessun tutore con un indirizzo",
    "duplicate_tax_code": "codice fiscale ripetuto",
    "duplicate_pupil": "alunno ripetuto: vale l'ultima riga",
    "impossible_date": "data non valida",
    "unknown_pupil": "alunno non trovato: importare l'elenco tutori insieme all'elenco alunni",
    "missing_name": "nome o cognome mancante: riga saltata",
    "missing_key": "nessun codice che identifichi l'alunno: riga saltata",
    "login_code": "codice utente in un formato inatteso",
    "username_taken": "il codice utente del registro è già di un'altra persona in rubrica: "
    "il riferimento provvisorio resta",
}
SHOWN = 100  # problems and changes listed before "e altri N"


class ImportPages:
    def __init__(self, console: Console) -> None:
        self.c = console
        self.desk = console.desks.directory
        self.limits = ImportLimits(min(MAX_UPLOAD_BYTES, self.desk.limits.max_bytes))
        console.env.globals.update(
            layout_label=LAYOUT_LABELS.get,
            problem_label=lambda code: PROBLEM_LABELS.get(code, code),
            shown=SHOWN,
        )

    async def form(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        if form is None:
            return self._form(staff)
        try:
            files = await self._uploads(form)
        except ImportRefused as exc:
            return self._form(staff, [exc.for_staff])
        prune = text_field(form, "rimuovi", 5) == "si"
        done = await self._run(staff, files, prune, dry_run=True)
        if isinstance(done, Response):
            return done
        return self.c.render(
            "console_import_preview.html",
            staff,
            title="Anteprima dell'importazione",
            imported=done,
            refusal=self._refusal(done.result.summary) if done.result.refusal else None,
            prune=prune,
            files=[(name, _digest(data), base64.b64encode(data).decode()) for name, data in files],
        )

    async def confirm(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        files = _carried(form)
        if not files:
            return self.c.refuse(staff, 400, "Importazione non valida: ricominciare")
        prune = text_field(form, "rimuovi", 5) == "si"
        done = await self._run(staff, files, prune, dry_run=False)
        if isinstance(done, Response):
            return done
        if done.result.refusal:
            back = self.c.url("/rubrica/importa")
            refusal = self._refusal(done.result.summary)
            return self.c.result(staff, 409, "Importazione non eseguita", refusal, back)
        return self.c.done("/rubrica", "importata")

    async def _uploads(self, form: FormData) -> list[tuple[str, bytes]]:
        """The chosen files, each read up to the limit (ImportRefused past it)."""
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile) and u.filename]
        if not uploads or len(uploads) > MAX_FILES:
            raise ImportRefused(
                "no file, or too many",
                f"Scegliere da 1 a {MAX_FILES} file: il CSV della rubrica, oppure i file del "
                f"registro (.xls, .xlsx o CSV, al massimo {self.limits.max_bytes // MIB} MB "
                "ciascuno).",
            )
        files = []
        for upload in uploads:
            name = upload_name(upload.filename)
            data = await upload.read(self.limits.max_bytes + 1)
            self.limits.check_size(len(data), name)
            files.append((name, data))
        return files

    async def _run(
        self, staff: StaffSession, files: list[tuple[str, bytes]], prune: bool, *, dry_run: bool
    ) -> DirectoryImport | Response:
        """The desk's import, or the form again saying in Italian why nothing was read."""
        try:
            return await run_in_threadpool(
                lambda: self.desk.import_files(files, staff.actor(), dry_run=dry_run, prune=prune)
            )
        except ImportRefused as exc:
            return self._form(staff, [exc.for_staff])
        except DirectoryError as exc:
            return self._form(staff, list(exc.problems))

    def _form(self, staff: StaffSession, problems: list[str] | None = None) -> Response:
        if problems is None:
            return self.c.render("console_import.html", staff, title=TITLE)
        return self.c.render("console_import.html", staff, 400, title=TITLE, problems=problems)

    def _refusal(self, summary: ImportSummary) -> str:
        """The guard against an empty or truncated file, in Italian."""
        gone = summary.removed + summary.retired
        if not summary.retired:
            what = "rimuoverebbe"
        elif summary.removed:
            what = "rimuoverebbe o segnerebbe come non più iscritte"
        else:
            what = "segnerebbe come non più iscritte"
        share = gone / summary.before if summary.before else 1.0
        return (
            f"L'importazione {what} {gone} delle {summary.before} persone in rubrica "
            f"({share:.0%}), più del {self.desk.max_prune_share:.0%} consentito: controllare che "
            "il file sia completo. Se lo è, l'importazione va eseguita dall'amministratore di "
            "sistema dal terminale."
        )


def upload_name(filename: str | None) -> str:
    """A browser's file name as shown back: the last path part, printable, at most 80."""
    base = os.path.basename((filename or "").replace("\\", "/"))
    shown = "".join(ch for ch in base if ch.isprintable())[:80].strip()
    return shown or "file caricato"


def _carried(form: FormData | None) -> list[tuple[str, bytes]]:
    """The files the preview carried back (name and base64, in order); [] when damaged."""
    if form is None:
        return []
    names, payloads = form.getlist("nome"), form.getlist("dati")
    if not payloads or len(payloads) > MAX_FILES:
        return []
    if len(names) != len(payloads):
        names = [""] * len(payloads)
    files = []
    for name, payload in zip(names, payloads, strict=True):
        if not isinstance(name, str) or not isinstance(payload, str):
            return []
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return []
        if not data:
            return []
        files.append((upload_name(name), data))
    return files


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
