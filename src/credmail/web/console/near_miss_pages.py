"""Forse richieste di credenziali: mails that look like credential requests without the
exact subject, each with one-step actions (treat as a request for oneself, for a named
student, or dismiss). The forms post the item's number, so an error page leads back here.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.desks.base import DeskError
from credmail.service.desks.near_miss import MAX_NAME, TREAT_ADULT, TREAT_STUDENT
from credmail.service.desks.staff import StaffSession
from credmail.service.presentation import NEAR_MISS_OUTCOME_LABELS, near_miss_rule_label
from credmail.web.console.base import Pages, done_message, query, text_field

PATH = "/forse-credenziali"
OUTCOME_DONE = {"answered": "nm_inviata", "review": "nm_revisione", "automated": "nm_scartata"}


class NearMissPages(Pages):
    async def listing(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        show_all = query(request, "tutti") == "si"
        items = await run_in_threadpool(self.desks.near_miss.listing, None if show_all else "open")
        return self.c.render(
            "console_near_misses.html",
            staff,
            title="Forse richieste di credenziali",
            done=done_message(request),
            items=items,
            show_all=show_all,
            rule_label=near_miss_rule_label,
            outcome_labels=NEAR_MISS_OUTCOME_LABELS,
            max_name=MAX_NAME,
            keyword=self.c.ctx.settings.classify.near_miss_keyword,
        )

    async def treat(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        item = _item_id(form)
        kind = text_field(form, "tipo", 10)
        student = text_field(form, "studente", MAX_NAME) if kind == TREAT_STUDENT else None
        if kind not in (TREAT_ADULT, TREAT_STUDENT):
            raise DeskError("scegliere se la richiesta è per sé o per uno studente")
        done = await run_in_threadpool(
            self.desks.near_miss.treat, item, staff.actor(), kind, student
        )
        return self.c.done(PATH, OUTCOME_DONE.get(done.outcome, "nm_trattata"))

    async def dismiss(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        await run_in_threadpool(self.desks.near_miss.dismiss, _item_id(form), staff.actor())
        return self.c.done(PATH, "nm_archiviata")


def _item_id(form: FormData | None) -> int:
    raw = text_field(form, "messaggio", 12)
    if not raw.isdigit():
        raise DeskError("messaggio non indicato")
    return int(raw)
