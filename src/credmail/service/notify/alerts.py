"""The sysadmin's alerts: one mail when a state needing a person begins, one when it ends.

The states are read where `credmail status`, `/healthz` and systemd's STATUS= line read
them (the status desk's report, the watcher's missing folder), never computed twice. What
the sysadmin was last told is stored per state; each check compares it with what is
true now. A begin mail goes at most once per state per `notify.alert_repeat_hours` (a
state that flaps is announced once; if it is still on when the window has passed, it is
announced again); an end mail follows every begin mail, at once. Each mail and the stored
state commit together, under a unique slot: exactly once across restarts and kills."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from credmail.service.desks.status import SIGN_IN_NEEDS_REAUTH, StatusReport
from credmail.service.notify.mailing import StaffMail
from credmail.service.ports import AlertRecord, UnitOfWork
from credmail.service.presentation import from_iso, italian_time

TEMPLATE_ALERT = "admin_alert"
KIND_ALERT = "alert"
BOUNCES_LOOKBACK = timedelta(days=7)  # a finished campaign's bounces still count


@dataclass(frozen=True)
class AlertKind:
    """One state needing a person: its Italian title and what the sysadmin should do."""

    name: str
    title: str
    fix: str


ALERTS: tuple[AlertKind, ...] = (
    AlertKind(
        "sign_in",
        "l'accesso OAuth2 a Microsoft 365 / Google va autorizzato di nuovo",
        "eseguire `credmail oauth login` (accesso delegato) o rinnovare il segreto o il "
        "certificato dell'applicazione, poi controllare `credmail status`",
    ),
    AlertKind(
        "mailbox_down",
        "la casella della segreteria non risponde",
        "controllare il server IMAP, la rete e le credenziali (mailbox.*); "
        "`credmail check-config --connect` prova l'accesso",
    ),
    AlertKind(
        "folder_missing",
        "la cartella sorvegliata non esiste nella casella",
        "creare la cartella nella casella o correggere mailbox.folder: credmail la cerca "
        "di nuovo da solo",
    ),
    AlertKind(
        "delivery",
        "l'invio della posta è fermo o in ritardo",
        "controllare il server SMTP e le impostazioni [smtp]; dopo una correzione, "
        "`credmail outbox retry`",
    ),
    AlertKind(
        "breaker",
        "il limite orario globale è scattato: le risposte automatiche sono sospese",
        "verificare nella console (Da rivedere) se è un abuso; poi `credmail limits reset` "
        "o il pulsante nel cruscotto della console",
    ),
    AlertKind(
        "campaign_bounces",
        "troppe e-mail dell'invio di settembre sono respinte",
        "controllare gli indirizzi in rubrica (`credmail campaign report NOME`); valutare "
        "`credmail campaign pause NOME`",
    ),
)
KINDS = {kind.name: kind for kind in ALERTS}


@dataclass(frozen=True)
class AlertConfig:
    admin: tuple[str, ...]
    mailbox_down: timedelta
    repeat: timedelta
    bounce_share: float
    bounce_min_mails: int


@dataclass(frozen=True)
class Watch:
    """What only the running daemon knows: when it started, the folder it lacks."""

    started_at: datetime
    missing_folder: Callable[[], str | None] = lambda: None


Observed = dict[str, str | None]
"""Per state: a technical detail (English) while it is on, None while it is off."""


class AlertService:
    def __init__(
        self, mail: StaffMail, status: Callable[[], StatusReport], config: AlertConfig
    ) -> None:
        self.mail, self.status, self.config = mail, status, config
        self.uow, self.clock, self.timezone = mail.uow, mail.clock, mail.timezone
        self.log = structlog.get_logger("credmail.notify")

    def observe(self, watch: Watch) -> Observed:
        """Which states are on now, each with its detail."""
        now = self.clock()
        details = self.status().details
        found: Observed = {
            "sign_in": _sign_in(details),
            "folder_missing": _folder(watch),
            "delivery": _delivery(details),
            "breaker": "circuit breaker tripped" if details["circuit_breaker_tripped"] else None,
        }
        quiet = found["sign_in"] or found["folder_missing"]  # the mailbox's cause is known
        found["mailbox_down"] = None if quiet else self._mailbox(details, watch, now)
        found["campaign_bounces"] = self._bounces(now)
        return found

    def check(self, watch: Watch) -> list[str]:
        """The daemon's tick: a mail per state that began or ended. Returns their names."""
        if not self.config.admin:
            return []
        observed = self.observe(watch)
        with self.uow(read_only=True) as uow:
            told = uow.notices.alerts()
        mailed = []
        for kind in ALERTS:
            record = told.get(kind.name, AlertRecord(kind.name))
            if self._due(record, observed[kind.name] is not None) and self._mail(
                kind, record, observed[kind.name]
            ):
                mailed.append(kind.name)
        return mailed

    def send_test(self) -> int:
        """`credmail notify test`: a test alert to every admin address; returns mails."""
        now = self.clock()
        values = {
            "test": True,
            "began": True,
            "title": "messaggio di prova",
            "fix": "",
            "detail": "",
        }
        with self.uow() as uow:
            if not uow.notices.take_slot(KIND_ALERT, f"test {now.isoformat()}", now, 0):
                return 0
            self._add(uow, values, now)
            uow.commit()
        return len(self.config.admin)

    def _due(self, record: AlertRecord, on: bool) -> bool:
        if on == record.announced:
            return False
        if not on:  # an end mail follows its begin mail at once
            return True
        last = record.alerted_at
        return last is None or self.clock() - last >= self.config.repeat

    def _mail(self, kind: AlertKind, record: AlertRecord, detail: str | None) -> bool:
        now = self.clock()
        began = detail is not None
        number = record.mails + 1
        with self.uow() as uow:
            current = uow.notices.alerts().get(kind.name, AlertRecord(kind.name))
            if current != record or not uow.notices.take_slot(
                KIND_ALERT, f"{kind.name}#{number}", now, len(self.config.admin)
            ):
                return False  # another process told it meanwhile
            values = {
                "test": False,
                "began": began,
                "title": kind.title,
                "fix": kind.fix,
                "detail": detail or "",
            }
            self._add(uow, values, now)
            alerted = now if began else record.alerted_at
            uow.notices.save_alert(AlertRecord(kind.name, began, alerted, number))
            uow.commit()
        self.log.warning("notify.alert", state=kind.name, began=began)
        return True

    def _add(self, uow: UnitOfWork, values: Mapping[str, Any], now: datetime) -> None:
        values = {
            **values,
            "now": italian_time(now, self.timezone),
            "repeat_hours": f"{self.config.repeat.total_seconds() / 3600:g}",
        }
        self.mail.queue(uow, TEMPLATE_ALERT, self.config.admin, values, now)

    def _mailbox(self, details: Mapping[str, Any], watch: Watch, now: datetime) -> str | None:
        """No successful sync for `mailbox_down` while the daemon ran."""
        last = from_iso(details["last_sync"])
        since = max(last, watch.started_at) if last else watch.started_at
        if now - since <= self.config.mailbox_down:
            return None
        minutes = (now - since).total_seconds() / 60
        return f"no successful sync for {minutes:.0f} minutes (last: {details['last_sync']})"

    def _bounces(self, now: datetime) -> str | None:
        with self.uow(read_only=True) as uow:
            deliveries = uow.notices.campaign_deliveries(now - BOUNCES_LOOKBACK)
        over = [
            f"{name}: {bounced} of {mailed} delivered (address, student) pairs bounced"
            for name, (mailed, bounced) in sorted(deliveries.items())
            if mailed >= self.config.bounce_min_mails
            and bounced / mailed > self.config.bounce_share
        ]
        return "; ".join(over) or None


def _sign_in(details: Mapping[str, Any]) -> str | None:
    sign_in = details.get("sign_in")
    if sign_in is None or sign_in["status"] != SIGN_IN_NEEDS_REAUTH:
        return None
    return f"{sign_in['cause']}; {sign_in['fix']}"


def _folder(watch: Watch) -> str | None:
    folder = watch.missing_folder()
    return None if folder is None else f"mailbox.folder {folder!r} does not exist"


def _delivery(details: Mapping[str, Any]) -> str | None:
    if details["delivery_ok"]:
        return None
    if details["delivery_paused"]:
        return f"delivery paused: {details['delivery_paused']}"
    age = details["oldest_unsent_age_seconds"]
    error = details["last_delivery_error_class"]
    return f"oldest unsent mail {age:.0f} s old" + (f"; last error: {error}" if error else "")
