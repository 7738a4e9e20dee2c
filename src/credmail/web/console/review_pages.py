"""Da rivedere: the queue, one request, and its decisions (approve, reject, discard).

A request shows only the approvals that fit it; an override (a link of another kind than
the request asked for) is a second page that says what it does before it is confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.desks.staff import StaffSession
from credmail.service.ports import ReviewFilter
from credmail.service.presentation import REASON_LABELS, decider_label
from credmail.service.review import AlreadyDecided
from credmail.web.console.base import Pages, done_message, page_number, path_id, query, text_field

PAGE_SIZE = 50
AGES = {"1": 1, "3": 3, "7": 7, "30": 30}  # "older than N days" filter of the queue
KINDS = ("adult", "student", "unknown")
LINKS = ("adult", "student")


class ReviewPages(Pages):
    async def queue(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        reason, kind, age = query(request, "motivo"), query(request, "tipo"), query(request, "eta")
        deferred = query(request, "rinviate") == "si"
        number = page_number(request)
        now = self.desks.status.clock()
        where = ReviewFilter(
            reason=reason if reason in REASON_LABELS else None,
            kind=kind if kind in KINDS else None,
            older_than=now - timedelta(days=AGES[age]) if age in AGES else None,
            at=now,
            deferred=deferred,
        )
        items, total = await run_in_threadpool(
            self.desks.review.queue, where, PAGE_SIZE, (number - 1) * PAGE_SIZE
        )
        counts = await run_in_threadpool(self.desks.deferrals.counts)
        return self.c.render(
            "console_queue.html",
            staff,
            title="Da rivedere",
            done=done_message(request),
            items=items,
            total=total,
            page=number,
            pages=max(1, -(-total // PAGE_SIZE)),
            reasons=sorted(REASON_LABELS.items(), key=lambda kv: kv[1]),
            kinds=KINDS,
            selected={"motivo": reason, "tipo": kind, "eta": age},
            ages=AGES,
            deferred=deferred,
            counts=counts,
        )

    async def item(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        detail = await run_in_threadpool(self.desks.review.show, path_id(request))
        return self.c.render(
            "console_item.html",
            staff,
            title=f"Richiesta {detail.item.id}",
            detail=detail,
            item=detail.item,
            today=self._today(),
            tomorrow=self._today() + timedelta(days=1),
        )

    async def override(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        """The second step of an override: what it does, then the button that does it."""
        item_id = path_id(request)
        detail = await run_in_threadpool(self.desks.review.show, item_id)
        username = query(request, "persona", 100)
        choice = next((c for c in detail.choices if c.username == username), None)
        if choice is None or choice.fits or choice.blocked:
            return self.c.result(
                staff,
                404,
                "Scelta non disponibile",
                "questa approvazione non è tra quelle possibili per la richiesta",
                self.c.url(f"/revisione/{item_id}"),
            )
        return self.c.render(
            "console_override.html",
            staff,
            title=f"Richiesta {item_id}: conferma di un'approvazione diversa",
            item=detail.item,
            choice=choice,
            today=self._today(),
        )

    def _today(self) -> date:
        return self.desks.status.clock().astimezone(self.c.ctx.app.timezone).date()

    def _incomplete(self, staff: StaffSession, item_id: int, what: str) -> Response:
        """A form sent without a field it needs: say which, and lead back to the request."""
        back = self.c.url(f"/revisione/{item_id}")
        return self.c.result(staff, 400, "Operazione non eseguita", what, back)

    async def _decide(
        self, request: Request, staff: StaffSession, action: Callable[[], object], code: str
    ) -> Response:
        """Run a decision; the loser of a race is told who decided first."""
        try:
            await run_in_threadpool(action)
        except AlreadyDecided as exc:
            return self.c.result(
                staff,
                409,
                "Richiesta già decisa",
                f"già deciso da {decider_label(exc.by)} ({exc.decision})",
                self.c.url(f"/revisione/{path_id(request)}"),
            )
        return self.c.done("/revisione", code)

    async def approve(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        item_id = path_id(request)
        person = text_field(form, "persona", 100)
        to = text_field(form, "indirizzo", 320) or None
        link = text_field(form, "tipo", 10)
        confirmed = text_field(form, "conferma", 5) == "si"  # the remember page's person
        remember = text_field(form, "ricorda", 5) == "si"
        owner = text_field(form, "genitore", 100) or None
        if not person:
            return self._incomplete(staff, item_id, "scegliere la persona")

        def act() -> None:
            kind = link if link in LINKS else None
            self.desks.review.approve(
                item_id,
                person,
                staff.actor(),
                to,
                kind=kind,
                confirmed=confirmed,
                remember=remember,
                remember_for=owner if remember else None,
            )

        return await self._decide(
            request, staff, act, "approvata_ricordata" if remember else "approvata"
        )

    async def remember(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        """Approving for a person the sender is not on file for: what it does (the link,
        and adding the sender's address to the person when ticked), then the button."""
        item_id = path_id(request)
        username = query(request, "persona", 100)
        if not username:
            return self._incomplete(staff, item_id, "indicare il codice della persona")
        proposal = await run_in_threadpool(self.desks.remembered.proposal, item_id, username)
        return self.c.render(
            "console_remember.html",
            staff,
            title=f"Richiesta {item_id}: approvazione per {proposal.person.full_name}",
            item=proposal.item,
            proposal=proposal,
            today=self._today(),
        )

    async def reject(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        item_id = path_id(request)
        note = text_field(form, "nota", 1000)
        notify = text_field(form, "avvisa", 5) == "si"
        if not note:
            return self._incomplete(staff, item_id, "scrivere il motivo del rifiuto")

        def act() -> None:
            self.desks.review.reject(item_id, note, notify, staff.actor())

        return await self._decide(request, staff, act, "respinta_avviso" if notify else "respinta")

    async def discard(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        item_id = path_id(request)
        note = text_field(form, "nota", 1000) or None

        def act() -> None:
            self.desks.review.discard(item_id, staff.actor(), note=note)

        return await self._decide(request, staff, act, "archiviata")

    async def defer(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        item_id = path_id(request)
        day = text_field(form, "data", 20)
        note = text_field(form, "nota", 1000) or None
        if not day:
            return self._incomplete(staff, item_id, "indicare la data fino a cui rinviare")

        def act() -> None:
            self.desks.deferrals.defer(item_id, day, staff.actor(), note)

        return await self._decide(request, staff, act, "rinviata")
