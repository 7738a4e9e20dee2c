"""Invio di settembre (administrators): the campaign desk of `credmail campaign` in the
console. The plan with its warnings and one family's mail as it will read, start (now or
at a date) and cancel after a confirmation page, pause, resume, extend, the progress bar
and the bounces waiting in review. Every change goes through the same desk as the CLI,
so the campaign's state and the activity log are the same whichever door was used."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from credmail.service.bounces import CAMPAIGN_REASON
from credmail.service.campaign_mail import Preview
from credmail.service.desks import DeskError
from credmail.service.desks.staff import StaffSession
from credmail.service.ports import CampaignState, PairState, ReviewFilter
from credmail.service.presentation import PAIR_STATE_LABELS
from credmail.web.console.base import Pages, done_message, query, text_field

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}\Z")
PREVIEW_HEADERS = ("From", "To", "Subject")
ACTIVE = (CampaignState.RUNNING, CampaignState.PAUSED)

# What the desk's (English, for the sysadmin) refusals mean here, per action.
REFUSED = {
    "avvia": (
        "L'invio non è stato avviato: nessuno degli studenti da avvisare ha in rubrica il "
        "codice del registro. Importare prima l'elenco degli studenti del registro con la "
        "colonna del codice utente, oppure confermare l'invio senza codici."
    ),
    "sospendi": "L'invio non si può sospendere: non è in corso.",
    "riprendi": "L'invio non si può riprendere: non è sospeso.",
    "annulla": "L'invio non si può annullare.",
    "estendi": "L'invio è stato annullato: non si può estendere.",
}
STALE = " Lo stato dell'invio potrebbe essere cambiato nel frattempo: ricaricare la pagina."


class CampaignPages(Pages):
    # the plan, the campaigns, the preview ------------------------------------------

    async def overview(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        desk = self.desks.campaign
        view = await run_in_threadpool(desk.plan)
        campaigns = await run_in_threadpool(desk.listing)
        statuses = [await run_in_threadpool(desk.status, c.name) for c in campaigns]
        who = query(request, "anteprima", 320)
        preview, missing = await self._preview(who)
        return self.c.render(
            "console_campaign.html",
            staff,
            title="Invio di settembre",
            done=done_message(request),
            view=view,
            statuses=statuses,
            preview=preview,
            preview_headers=_headers(preview),
            missing=missing,
            who=who,
            all_made_up=bool(view.made_up_codes())
            and len(view.made_up_codes()) == view.plan.reached_students,
            duration=_duration(view.duration.total_seconds()),
            suggested=f"settembre-{self.c.ctx.app.clock().year}",
            active=ACTIVE,
        )

    async def _preview(self, who: str) -> tuple[Preview | None, str | None]:
        try:
            return await run_in_threadpool(self.desks.campaign.preview, who or None), None
        except DeskError:
            if who:
                return None, (
                    "Nessuna e-mail del piano va a questo indirizzo o riguarda questa persona "
                    "(indicare il codice di un nuovo iscritto o di un genitore/tutore, oppure "
                    "un indirizzo del piano)."
                )
            return None, "Il piano non ha e-mail da mostrare."

    # starting: a confirmation page first ----------------------------------------------

    async def start(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        name = text_field(form, "nome", 60)
        when, at = text_field(form, "quando", 10), None
        if not NAME.match(name):
            return self._refused(
                staff, "Il nome dell'invio può contenere solo lettere, cifre, - e _ (fino a 50)."
            )
        if when == "data":
            at = _local_start(text_field(form, "data", 10), text_field(form, "ora", 5))
            if at is None:
                return self._refused(
                    staff, "Indicare giorno (gg/mm/aaaa) e ora (hh:mm) dell'inizio, o «subito»."
                )
        without = text_field(form, "senza_codici", 2) == "si"
        if text_field(form, "conferma", 2) != "si":
            return await self._confirm_start(staff, name, at, without)
        try:
            started = await run_in_threadpool(
                self.desks.campaign.start, name, at, staff.actor(), without_codes=without
            )
        except DeskError:
            return self._refused(staff, REFUSED["avvia"])
        return self.c.done(_path(name), "avviato" if started.created else "esistente")

    async def _confirm_start(
        self, staff: StaffSession, name: str, at: str | None, without: bool
    ) -> Response:
        view = await run_in_threadpool(self.desks.campaign.plan)
        zone = self.c.ctx.app.timezone
        moment = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=zone) if at else None
        return self.c.render(
            "console_campaign_confirm.html",
            staff,
            title="Confermare l'avvio dell'invio",
            action="avvia",
            invio=name,
            at=at,
            moment=moment,
            without=without,
            view=view,
            duration=_duration(view.duration.total_seconds()),
        )

    # one campaign: its progress and bounces, and the actions -----------------------

    async def campaign(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        name = str(request.path_params["name"])[:100]
        desk = self.desks.campaign
        status = await run_in_threadpool(desk.status, name)
        pairs = await run_in_threadpool(desk.report, name)
        bounced = [p for p in pairs if p.state == PairState.BOUNCED]
        ids = {p.message_id for p in bounced}
        items, _ = await run_in_threadpool(
            self.desks.review.queue, ReviewFilter(reason=CAMPAIGN_REASON), 500, 0
        )
        return self.c.render(
            "console_campaign_status.html",
            staff,
            title=f"Invio «{name}»",
            done=done_message(request),
            progress=status,
            info=status.campaign,
            bounced=bounced,
            items=[item for item in items if item.message_id in ids],
            active=ACTIVE,
            path=_path(name),
            pair_states=list(PAIR_STATE_LABELS.items()),
        )

    async def pause(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        return await self._act(request, staff, "sospendi", "sospeso")

    async def resume(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        return await self._act(request, staff, "riprendi", "ripreso")

    async def extend(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        return await self._act(request, staff, "estendi", "esteso")

    async def cancel(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        if text_field(form, "conferma", 2) == "si":
            return await self._act(request, staff, "annulla", "annullato")
        name = str(request.path_params["name"])[:100]
        status = await run_in_threadpool(self.desks.campaign.status, name)
        return self.c.render(
            "console_campaign_confirm.html",
            staff,
            title="Confermare l'annullamento dell'invio",
            action="annulla",
            invio=name,
            progress=status,
            path=_path(name),
        )

    async def _act(self, request: Request, staff: StaffSession, action: str, done: str) -> Response:
        name = str(request.path_params["name"])[:100]
        desk = self.desks.campaign
        call = {
            "sospendi": desk.pause,
            "riprendi": desk.resume,
            "annulla": desk.cancel,
            "estendi": desk.extend,
        }[action]
        try:
            await run_in_threadpool(call, name, staff.actor())
        except DeskError:
            return self._refused(staff, REFUSED[action] + STALE, _path(name))
        return self.c.done(_path(name), done)

    def _refused(self, staff: StaffSession, message: str, back: str = "/invio") -> Response:
        return self.c.result(staff, 409, "Operazione non eseguita", message, self.c.url(back))


def _path(name: str) -> str:
    return f"/invio/{quote(name, safe='')}"


def _local_start(day: str, hour: str) -> str | None:
    """ "07/09/2026" and "8:00" as the desk reads a start ("2026-09-07 08:00"); None when
    either cannot be read."""
    for shape in ("%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(f"{day} {hour}", shape).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            continue
    return None


def _headers(preview: Preview | None) -> list[tuple[str, str]]:
    if preview is None:
        return []
    return [(name, value) for name, value in preview.headers() if name in PREVIEW_HEADERS]


def _duration(seconds: float) -> str:
    """ "2 giorni e 3 ore", "45 minuti" (rounded down; at least a minute)."""
    minutes = max(1, int(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} {'giorno' if days == 1 else 'giorni'}")
    if hours:
        parts.append(f"{hours} {'ora' if hours == 1 else 'ore'}")
    if minutes and not days:
        parts.append(f"{minutes} {'minuto' if minutes == 1 else 'minuti'}")
    return " e ".join(parts) or "meno di un minuto"
