"""What staff read: an Italian label for every code that reaches the console or the
Italian review commands, times in the school's time zone in Italian ("7 dicembre 2026
alle 18:48"), plurals that agree ("1 messaggio") and messages that start with a capital.

Codes stay codes in the database, the logs and the JSON output; they are turned into
words here, once, for every door.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

REASON_LABELS = {
    "missing_from": "manca il mittente (From)",
    "repeated_from": "il campo From compare più volte",
    "multi_address_from": "il campo From contiene più indirizzi",
    "malformed_from": "il campo From è malformato",
    "non_ascii_local_part": "l'indirizzo del mittente contiene caratteri non ASCII",
    "malformed_subject": "l'oggetto è malformato",
    "reply_prefix": "l'oggetto è una risposta o un inoltro (Re:, I:, Fwd: …)",
    "unknown_sender": "l'indirizzo del mittente non è registrato",
    "ambiguous_person": "l'indirizzo appartiene a più persone e il messaggio non indica quale",
    "not_guardian": "il mittente non è un genitore/tutore registrato",
    "no_linked_student": "il genitore/tutore non ha studenti collegati",
    "ambiguous_student": "il genitore/tutore ha più studenti e il messaggio non indica quale",
    "adult_student": "lo studente indicato è maggiorenne",
    "not_enrolled": "lo studente non risulta più iscritto (ritirato, trasferito o uscito)",
    "processing_error": "il messaggio non è stato elaborato per un errore",
    "oversize": "il messaggio supera la dimensione massima",
    "too_many_attempts": "l'elaborazione si è interrotta più volte",
    "delivery_failed": "la risposta non è stata consegnata (errore permanente del server)",
    "display_name_address": "il nome del mittente contiene un indirizzo o una @",
    "display_name_encoded": "il nome del mittente contiene una parte codificata illeggibile",
    "display_name_control": "il nome del mittente contiene caratteri invisibili o di controllo",
    "display_name_mixed_script": "il nome del mittente mescola alfabeti che si somigliano",
    "display_name_too_long": "il nome del mittente è troppo lungo",
    "header_smuggling": "le intestazioni hanno fine riga anomale: il mittente può essere falso",
    "header_too_long": "un'intestazione del messaggio è troppo lunga ed è stata ignorata",
    "mime_too_complex": "il messaggio ha troppe parti, o parti troppo complesse, per essere letto",
    "confusable_domain": "il dominio del mittente usa caratteri ingannevoli o misti",
    "auth_results_conflict": "più intestazioni Authentication-Results attendibili",
    "auth_results_unparseable": "intestazione Authentication-Results illeggibile",
    "unauthenticated_sender": "il mittente non è autenticato (DMARC/DKIM)",
    "rate_limited": "troppe richieste per questo account o indirizzo",
    "circuit_breaker": "limite orario globale raggiunto: invii sospesi",
    "acknowledgement_limited": "troppe conferme di ricezione: la conferma non è stata inviata",
    "undecided": "nessuna regola ha permesso una risposta automatica",
    "raw_truncated": "messaggio conservato solo in parte (intestazioni e inizio del testo)",
    "spam_flagged": "il filtro antispam ha segnalato il messaggio come possibile spam",
    "pec_envelope": (
        "messaggio di posta certificata (PEC): controllare il mittente originale; "
        "non si risponde automaticamente"
    ),
    "auth_results_unattributed": (
        "un'intestazione Authentication-Results senza server di origine (es. Microsoft 365): "
        "non prova nulla"
    ),
    "reply_bounced": "la risposta inviata non è stata consegnata: la famiglia non ha il "
    "collegamento",
    "campaign_bounced": "indirizzo non valido: la mail della campagna non è stata consegnata; "
    "contattare la famiglia",
    "notify_bounced": "un riepilogo o un avviso per il personale non è stato consegnato: "
    "controllare gli indirizzi della sezione [notify] della configurazione",
}
KIND_LABELS = {
    "adult": "credenziali personali",
    "student": "credenziali di uno studente",
    "unknown": "una richiesta non riconosciuta",
}
LINK_LABELS = {
    "adult": "per le credenziali personali",
    "student": "per le credenziali di uno studente minorenne",
}
HEADER_LABELS = {
    "From": "Mittente",
    "To": "Destinatario",
    "Subject": "Oggetto",
    "Date": "Data",
    "Reply-To": "Rispondere a",
    "Message-ID": "Identificativo del messaggio",
    "PEC-From": "Mittente originale (PEC, da verificare)",
    "PEC-Subject": "Oggetto originale (PEC)",
}
ROLE_LABELS = {
    "student": "studente",
    "guardian": "genitore/tutore",
    "teacher": "docente",
    "staff": "personale ATA",
    "head": "dirigente",
}
STAFF_ROLE_LABELS = {"operatore": "operatore", "amministratore": "amministratore"}
DECISION_LABELS = {
    "pending": "in attesa",
    "approved": "approvata",
    "rejected": "respinta",
    "discarded": "archiviata",
}
TEMPLATE_LABELS = {
    "link_adult": "collegamento per le credenziali personali",
    "link_student": "collegamento per le credenziali di uno studente minorenne",
    "minor_procedure": "istruzioni per gli studenti minorenni",
    "review_rejected": "avviso di richiesta non accolta",
    "acknowledge_unknown": "conferma di ricezione (mittente non in rubrica)",
    "near_miss_guide": "istruzioni per chiedere le credenziali (richiesta senza l'oggetto)",
    "rate_limited": "avviso di troppe richieste",
    "link_already_sent": "avviso di collegamento già inviato",
    "task_done": "avviso di credenziali inviate dal registro",
    "campaign_new_student": "credenziali dei nuovi iscritti (invio di settembre)",
    "staff_digest": "riepilogo per la segreteria",
    "admin_alert": "avviso per l'amministratore di sistema",
}
OUTBOX_STATUS_LABELS = {
    "pending": "in coda",
    "failed": "non consegnata",
    "bounced": "respinta dal server",
    "sent": "inviata",
}
TASK_STATUS_LABELS = {"open": "da eseguire", "done": "eseguita"}
ACTION_LABELS = {
    "review.approved": "richiesta approvata",
    "review.rejected": "richiesta respinta",
    "review.discarded": "richiesta archiviata",
    "review.deferred": "richiesta rinviata",
    "directory.remember": "indirizzo aggiunto a una persona",
    "directory.unremember": "indirizzo aggiunto rimosso",
    "directory.import": "rubrica importata",
    "directory.language": "lingua impostata",
    "outbox.retry": "posta in uscita: nuovo tentativo",
    "limits.reset": "limite globale azzerato",
    "staff.add": "account creato",
    "staff.passwd": "password cambiata",
    "staff.disable": "account disattivato",
    "staff.totp": "secondo fattore (TOTP) attivato",
    "task.done": "attività del registro eseguita",
    "campaign.start": "invio di settembre avviato",
    "campaign.pause": "invio di settembre sospeso",
    "campaign.resume": "invio di settembre ripreso",
    "campaign.cancel": "invio di settembre annullato",
    "campaign.extend": "invio di settembre esteso ai nuovi iscritti",
    "near_miss.treat": "forse richiesta di credenziali: trattata come richiesta",
    "near_miss.dismiss": "forse richiesta di credenziali: archiviata",
    "sign_in": "accesso",
    "sign_in.failed": "accesso non riuscito",
    "sign_out": "uscita",
}
SOURCE_LABELS = {"web": "console", "cli": "terminale"}
# The September mailing's warnings and pair states, as the secretariat reads them.
CAMPAIGN_WARNING_LABELS = {
    "no_guardian": "nuovo studente senza genitori/tutori in rubrica: nessuna e-mail",
    "guardian_no_address": "genitore/tutore senza indirizzo in rubrica",
    "no_address": "nessun indirizzo utilizzabile dei genitori/tutori: nessuna e-mail",
    "shared_address": "indirizzo condiviso da più famiglie",
    "adult": "studente maggiorenne: segue la procedura degli adulti, nessuna e-mail",
    "bad_address": "indirizzo in rubrica non valido",
    "pec_address": "indirizzo PEC: non riceve l'e-mail",
}
CAMPAIGN_STATUS_LABELS = {
    "running": "in corso",
    "paused": "sospeso",
    "cancelled": "annullato",
    "done": "completato",
}
PAIR_STATE_LABELS = {
    "planned": "da inviare",
    "queued": "in coda",
    "sent": "inviata",
    "failed": "non consegnata",
    "bounced": "respinta dal server",
    "cancelled": "annullata",
    "skipped": "non inviata (indirizzo PEC)",
}
PURPOSE_LABELS = {
    "adult_reset": "credenziali personali",
    "student_reset": "credenziali di uno studente minorenne",
    "student_first_access": "primo accesso di un nuovo iscritto",
}
BACKEND_LABELS = {
    "worklist": "attività da fare nel registro",
    "ldap": "password impostata nella directory della scuola (LDAP)",
    "webhook": "richiesta inviata al sistema della scuola",
}
SIGN_IN_LABELS = {
    "ok": "regolare",
    "unknown": "non ancora verificato",
    "needs_reauth": "serve un nuovo accesso",
}
LANGUAGE_LABELS = {
    "it": "italiano",
    "ar": "arabo",
    "en": "inglese",
    "es": "spagnolo",
    "fr": "francese",
    "ro": "rumeno",
    "sq": "albanese",
    "uk": "ucraino",
    "zh": "cinese",
    "de": "tedesco",
    "pt": "portoghese",
    "ru": "russo",
    "hi": "hindi",
    "bn": "bengalese",
    "ur": "urdu",
    "pa": "punjabi",
    "tl": "filippino",
}


def _lookup(table: dict[str, str], code: str | None) -> str:
    return table.get(code or "", code or "")


def reason_label(code: str) -> str:
    return _lookup(REASON_LABELS, code)


def kind_label(kind: str) -> str:
    return _lookup(KIND_LABELS, kind)


def link_label(kind: str) -> str:
    return _lookup(LINK_LABELS, kind)


def header_label(name: str) -> str:
    return _lookup(HEADER_LABELS, name)


def role_label(role: str) -> str:
    return _lookup(ROLE_LABELS, str(role))


# Why a mail was listed in "Forse richieste di credenziali": the rule that fired (a rule
# the school wrote itself is shown by its name).
NEAR_MISS_RULE_LABELS = {
    "credentials_in_subject": "l'oggetto parla di credenziali o di password",
    "credentials_asked": "il testo chiede credenziali o una password",
    "register_access_problem": "il testo dice che non riesce ad accedere al registro",
    "register_forgotten": "il testo parla di credenziali del registro perse o bloccate",
}
# What treating a near miss did, by the decision's outcome.
NEAR_MISS_OUTCOME_LABELS = {
    "answered": "la risposta è in coda per l'invio all'indirizzo in rubrica",
    "review": 'la richiesta è passata in "Da rivedere"',
    "automated": "posta automatica: scartata, nessun messaggio inviato",
}


def near_miss_rule_label(rule: str) -> str:
    return NEAR_MISS_RULE_LABELS.get(rule, rule)


def decision_label(decision: str | None) -> str:
    return _lookup(DECISION_LABELS, decision)


def template_label(template: str) -> str:
    return _lookup(TEMPLATE_LABELS, template)


def outbox_status_label(status: str) -> str:
    return _lookup(OUTBOX_STATUS_LABELS, status)


def task_status_label(status: str) -> str:
    return _lookup(TASK_STATUS_LABELS, status)


def action_label(code: str) -> str:
    return _lookup(ACTION_LABELS, code)


def source_label(source: str) -> str:
    return _lookup(SOURCE_LABELS, source)


def campaign_status_label(status: str) -> str:
    return _lookup(CAMPAIGN_STATUS_LABELS, status)


def sign_in_label(status: str) -> str:
    return _lookup(SIGN_IN_LABELS, status)


def language_label(code: str | None) -> str:
    """ "rumeno (ro)"; no language on file: Italian, the default."""
    if not code:
        return "italiano (lingua predefinita)"
    name = LANGUAGE_LABELS.get(code)
    return f"{name} ({code})" if name else code


_DECIDER = re.compile(rf"^(?P<name>.*) \((?P<source>{'|'.join(SOURCE_LABELS)})\)$")


def decider_label(decided_by: str | None) -> str:
    """ "olga (web)", as decisions record who took them, as "olga (console)"."""
    found = _DECIDER.match(decided_by or "")
    if found is None:
        return decided_by or ""
    return f"{found['name']} ({source_label(found['source'])})"


_TEMPLATE_CODE = re.compile(r"\b(" + "|".join(TEMPLATE_LABELS) + r")\b")


def detail_label(detail: str | None) -> str:
    """An audit entry's or decision's detail; entries written before the details were
    worded name the reply by its template code ("link_student per S2345679C")."""
    return _TEMPLATE_CODE.sub(lambda m: template_label(m.group(1)), detail or "")


# -- time, numbers, sentences -------------------------------------------------------------

MONTHS = (
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
)


def italian_date(day: date | str | None) -> str:
    """ "7 dicembre 2026"; a date stored as ISO text too (an unreadable one as written)."""
    if isinstance(day, str):
        written = day
        try:
            day = date.fromisoformat(written)
        except ValueError:
            return written
    if day is None:
        return ""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def italian_time(moment: datetime | None, timezone: ZoneInfo) -> str:
    """ "7 dicembre 2026 alle 18:48", in the school's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(timezone)
    return f"{italian_date(local.date())} alle {local:%H:%M}"


ARTICLES = {"": ("il ", "l'"), "a": ("al ", "all'"), "da": ("dal ", "dall'")}


def italian_time_on(moment: datetime | None, timezone: ZoneInfo, preposition: str = "") -> str:
    """With the article a sentence needs: "il 7 dicembre 2026 alle 18:48", "l'8 dicembre
    …"; with `preposition` "a" ("fino al 7 …", "fino all'11 …") or "da"."""
    if moment is None:
        return ""
    day = moment.astimezone(timezone).day
    plain, elided = ARTICLES[preposition]
    return (elided if day in (1, 8, 11, 18) else plain) + italian_time(moment, timezone)


def from_iso(text: str | None) -> datetime | None:
    """A moment stored as ISO 8601 text (the status report's); None if unreadable."""
    try:
        return datetime.fromisoformat(text or "")
    except ValueError:
        return None


def mail_date(value: str, timezone: ZoneInfo) -> str:
    """A mail's Date header ("Mon, 07 Dec 2026 17:48:21 +0000") in Italian, school time;
    an unreadable one as written."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return value
    if moment.tzinfo is None:  # "-0000": the time zone is not known; taken as UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    try:
        return italian_time(moment, timezone)
    except (OverflowError, ValueError):  # a sender's year 9999 near midnight: as written
        return value


def header_value(name: str, value: str, timezone: ZoneInfo) -> str:
    return mail_date(value, timezone) if name == "Date" else value


NO_REGISTER_CODE = "senza codice del registro"


def register_code(username: str) -> str:
    """A username as staff read it: the register's login code, or, when credmail made the
    username up (the export had no login codes), a note that the register's code is not on
    file yet: the made-up key exists in no register and must not be typed into one."""
    from credmail.service.register_import import is_register_reference

    return NO_REGISTER_CODE if is_register_reference(username) else username


def plural(count: int, one: str, many: str) -> str:
    """ "1 messaggio", "0 messaggi", "2 messaggi"."""
    return f"{count} {one if count == 1 else many}"


def sentence(text: str) -> str:
    """A message as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def capital(text: str) -> str:
    """A label standing alone (a list item): a capital first letter."""
    return text[:1].upper() + text[1:]
