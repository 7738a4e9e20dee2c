"""Da fare nel registro: the verified tasks, and marking one done.

The form keeps apart an internal note (stored, never mailed) and a message to the
family (mailed); a message is shown in the mail it goes in, and sent only once confirmed.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.desks.staff import StaffSession
from credmail.web.console.base import Pages, done_message, path_id, query, text_field

MAX_TEXT = 1000


class TaskPages(Pages):
    async def tasks(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        show_all = query(request, "tutte") == "si"
        listing = await run_in_threadpool(self.desks.tasks.listing, None if show_all else "open")
        return self.c.render(
            "console_tasks.html",
            staff,
            title="Da fare nel registro",
            done=done_message(request),
            tasks=listing,
            show_all=show_all,
        )

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
