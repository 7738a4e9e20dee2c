"""Da fare nel registro: the verified tasks by family (the tasks at one address
together), filtered by class and date, a page of families at a time; one task marked
done with a note and a message, or many at once; the open ones as CSV for the register.

The form keeps apart an internal note (stored, never mailed) and a message to the
family (mailed); a message is shown in the mail it goes in, and sent only once confirmed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from credmail.service.desks.staff import StaffSession
from credmail.service.ports import TaskFilter
from credmail.web.console.base import (
    Pages,
    done_message,
    page_number,
    path_id,
    query,
    text_field,
)

MAX_TEXT = 1000
MAX_SELECTED = 1000  # task ids one bulk form may carry
FILTERS = ("classe", "dal", "al", "tutte")


class TaskPages(Pages):
    def _filter(self, params: dict[str, str]) -> TaskFilter:
        tz = self.c.ctx.app.timezone

        def day(raw: str, plus: int = 0) -> datetime | None:
            try:
                return datetime.combine(date.fromisoformat(raw), time(), tz) + timedelta(plus)
            except ValueError:
                return None

        return TaskFilter(
            status=None if params.get("tutte") == "si" else "open",
            class_name=params.get("classe") or None,
            since=day(params.get("dal", "")),
            until=day(params.get("al", ""), plus=1),
        )

    async def tasks(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        params = {name: query(request, name, 20) for name in FILTERS}
        where = self._filter(params)
        listing = await run_in_threadpool(self.desks.worklist.page, where, page_number(request))
        classes = await run_in_threadpool(self.desks.worklist.classes)
        return self.c.render(
            "console_tasks.html",
            staff,
            title="Da fare nel registro",
            done=_bulk_message(request) or done_message(request),
            listing=listing,
            show_all=where.status is None,
            params=params,
            classes=classes,
            filters=urlencode({k: v for k, v in params.items() if v}),
        )

    async def tasks_csv(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        where = self._filter({name: query(request, name, 20) for name in FILTERS})
        chunks = iterate_in_threadpool(self.desks.worklist.export_csv(where))
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="da-fare-nel-registro.csv"'},
        )

    async def tasks_done(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        """Many tasks at once: the ones ticked, or every open one the filters match."""
        assert form is not None
        note = text_field(form, "nota", MAX_TEXT) or None
        if text_field(form, "quali", 20) == "filtrate":
            where = self._filter({name: text_field(form, name, 20) for name in FILTERS})
            ids = await run_in_threadpool(self.desks.worklist.open_ids, where)
        else:
            ticked = form.getlist("attivita")[:MAX_SELECTED]
            ids = [int(v) for v in ticked if isinstance(v, str) and v.isdigit()]
        if not ids:
            back = self.c.url("/registro")
            return self.c.result(
                staff, 400, "Operazione non eseguita", "nessuna attività scelta", back
            )
        result = await run_in_threadpool(self.desks.worklist.done_many, ids, staff.actor(), note)
        counts = f"fatto=eseguite&n={result.done}&e={result.mailed}&s={len(result.skipped)}"
        return RedirectResponse(self.c.url("/registro") + "?" + counts, status_code=303)

    async def task_done(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        task_id = path_id(request)
        note = text_field(form, "nota", MAX_TEXT) or None
        message = text_field(form, "messaggio", MAX_TEXT).replace("\r\n", "\n") or None
        if message and text_field(form, "conferma", 5) != "si":
            return await self._preview(staff, task_id, note, message)
        task = await run_in_threadpool(self.desks.tasks.done, task_id, staff.actor(), note, message)
        if not task.address:
            return self.c.done("/registro", "eseguita_senza_avviso")
        return self.c.done("/registro", "eseguita_messaggio" if message else "eseguita")

    async def _preview(
        self, staff: StaffSession, task_id: int, note: str | None, message: str
    ) -> Response:
        """The mail as the family will read it; nothing is done until it is confirmed."""
        task = await run_in_threadpool(self.desks.tasks.get, task_id)
        mail = await run_in_threadpool(self.desks.tasks.preview, task_id, message)
        return self.c.render(
            "console_task_preview.html",
            staff,
            title="Controllare il messaggio prima dell'invio",
            task=task,
            mail=mail,
            note=note or "",
            message=message,
        )


def _bulk_message(request: Request) -> str | None:
    """What a bulk "segna come eseguite" did, from the redirect's counts."""
    if query(request, "fatto", 20) != "eseguite":
        return None
    done, mailed, skipped = (query(request, k, 6) for k in ("n", "e", "s"))
    if not (done.isdigit() and mailed.isdigit() and skipped.isdigit()):
        return None
    text = (
        f"Attività segnate come eseguite: {done}. Avvisi per e-mail in coda: {mailed} "
        "(uno per indirizzo, con tutti i figli)."
    )
    if int(skipped):
        text += f" {skipped} non erano più da fare (già segnate da altri) e sono state saltate."
    return text
