"""Staff accounts, sign-in lockout, sessions, roles and the audit log, on the fakes."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher

from credmail.service.desks import Actor, DeskError
from credmail.service.desks.staff import SignInRefused
from credmail.service.ports import AuditFilter, ReviewFilter
from credmail.service.review import AlreadyDecided, NotPermitted
from tests.service.conftest import CLERK, FAST_ARGON2, Office
from tests.service.test_review_desk import pending

PASSWORD = "una password lunga"
ADMIN = Actor("anna", "web", "amministratore")
OPERATOR = Actor("olga", "web", "operatore")


def staffed(office: Office) -> Office:
    office.staff.add("anna", "amministratore", PASSWORD, CLERK)
    office.staff.add("olga", "operatore", PASSWORD, CLERK)
    return office


def test_passwords_are_stored_as_argon2id_hashes(office: Office) -> None:
    staffed(office)
    stored = office.uow.store.staff["olga"].password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert [(v.name, v.role, v.active) for v in office.staff.listing()] == [
        ("anna", "amministratore", True),
        ("olga", "operatore", True),
    ]


def test_bad_accounts_are_refused(office: Office) -> None:
    with pytest.raises(DeskError, match="at least 12"):
        office.staff.add("mario", "operatore", "corta", CLERK)
    with pytest.raises(DeskError, match="role"):
        office.staff.add("mario", "capo", PASSWORD, CLERK)
    with pytest.raises(DeskError, match="contain the name"):
        office.staff.add("mario", "operatore", "mario-1234567890", CLERK)
    staffed(office)
    with pytest.raises(DeskError, match="already exists"):
        office.staff.add("olga", "operatore", PASSWORD, CLERK)


def test_sign_in_opens_a_session_and_sign_out_closes_it(office: Office) -> None:
    staffed(office)
    signed = office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1")
    session = office.staff.session(signed.token)
    assert session is not None and (session.name, session.role) == ("olga", "operatore")
    assert session.csrf == signed.csrf and signed.token not in str(office.uow.store.sessions)
    office.staff.sign_out(signed.token)
    assert office.staff.session(signed.token) is None
    actions = [e.action for e in office.uow.store.audit]
    assert actions[-2:] == ["sign_in", "sign_out"]


def test_a_session_expires_after_30_idle_minutes(office: Office) -> None:
    staffed(office)
    token = office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1").token
    office.clock.now += timedelta(minutes=29)
    assert office.staff.session(token) is not None  # use keeps it alive
    office.clock.now += timedelta(minutes=29)
    assert office.staff.session(token) is not None
    office.clock.now += timedelta(minutes=31)
    assert office.staff.session(token) is None
    assert office.uow.store.sessions == {}


def test_wrong_password_unknown_name_and_disabled_account_are_refused_alike(
    office: Office,
) -> None:
    staffed(office)
    for name, password in (("olga", "sbagliata-123456"), ("nessuno", PASSWORD)):
        with pytest.raises(SignInRefused, match="non validi"):
            office.staff.sign_in(name, password, "", "10.0.0.1")
    office.staff.disable("olga", CLERK)
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("olga", PASSWORD, "", "10.0.0.2")
    assert office.uow.store.audit[-1].action == "sign_in.failed"


def test_disabling_or_a_new_password_ends_open_sessions(office: Office) -> None:
    staffed(office)
    token = office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1").token
    office.staff.passwd("olga", "un'altra password lunga", CLERK)
    assert office.staff.session(token) is None
    token = office.staff.sign_in("olga", "un'altra password lunga", "", "10.0.0.1").token
    office.staff.disable("olga", CLERK)
    assert office.staff.session(token) is None


def test_after_five_failures_the_account_waits_longer_each_time(office: Office) -> None:
    staffed(office)
    for n in range(5):
        with pytest.raises(SignInRefused, match="non validi"):
            office.staff.sign_in("olga", f"sbagliata-{n:08}", "", f"10.0.0.{n}")
    with pytest.raises(SignInRefused, match="riprovare") as first:
        office.staff.sign_in("olga", PASSWORD, "", "10.0.1.1")  # even the right password
    assert first.value.wait_seconds == 30
    office.clock.now += timedelta(seconds=31)
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("olga", "sbagliata-again", "", "10.0.1.2")
    with pytest.raises(SignInRefused) as second:
        office.staff.sign_in("olga", PASSWORD, "", "10.0.1.3")
    assert second.value.wait_seconds == 60
    office.clock.now += timedelta(seconds=61)
    assert office.staff.sign_in("olga", PASSWORD, "", "10.0.1.4").name == "olga"
    office.staff.sign_in("olga", PASSWORD, "", "10.0.1.5")  # success cleared the count


def test_a_client_address_is_locked_out_across_accounts(office: Office) -> None:
    staffed(office)
    for n in range(5):
        with pytest.raises(SignInRefused):
            office.staff.sign_in(f"utente{n}", PASSWORD, "", "192.0.2.9")
    with pytest.raises(SignInRefused, match="riprovare"):
        office.staff.sign_in("anna", PASSWORD, "", "192.0.2.9")
    assert office.staff.sign_in("anna", PASSWORD, "", "192.0.2.10").name == "anna"


def test_totp_is_required_once_turned_on(office: Office) -> None:
    staffed(office)
    uri = office.staff.totp("olga", CLERK)
    assert uri.startswith("otpauth://totp/") and "olga" in uri
    secret = pyotp.parse_uri(uri).secret
    with pytest.raises(SignInRefused):
        office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1")
    with pytest.raises(SignInRefused):
        office.staff.sign_in("olga", PASSWORD, "000000", "10.0.0.1")
    code = pyotp.TOTP(secret).at(office.clock())
    assert office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1").name == "olga"
    assert [v.totp for v in office.staff.listing()] == [False, True]


def test_a_totp_code_opens_one_session_only(office: Office) -> None:
    staffed(office)
    totp = pyotp.parse_uri(office.staff.totp("olga", CLERK))
    assert isinstance(totp, pyotp.TOTP)
    code = totp.at(office.clock())
    assert office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1").name == "olga"
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1")
    office.clock.now += timedelta(seconds=30)
    assert totp.at(office.clock() - timedelta(seconds=30)) == code  # still in the window
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1")
    assert office.staff.sign_in("olga", PASSWORD, totp.at(office.clock()), "10.0.0.1")


def test_the_totp_secret_is_stored_sealed(office: Office) -> None:
    staffed(office)
    secret = pyotp.parse_uri(office.staff.totp("olga", CLERK)).secret
    stored = office.uow.store.staff["olga"].totp_secret or ""
    assert stored.startswith("sealed:") and secret not in stored
    key_file = office.staff.seal.path  # type: ignore[union-attr]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    code = pyotp.TOTP(secret).at(office.clock())
    assert office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1").name == "olga"


def test_a_clear_secret_from_an_older_version_works_and_is_sealed_at_sign_in(
    office: Office,
) -> None:
    staffed(office)
    office.staff.totp("anna", CLERK)  # the key file exists from now on
    secret = pyotp.random_base32()
    office.uow.store.staff["olga"] = replace(office.uow.store.staff["olga"], totp_secret=secret)
    code = pyotp.TOTP(secret).at(office.clock())
    assert office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1").name == "olga"
    stored = office.uow.store.staff["olga"].totp_secret or ""
    assert stored.startswith("sealed:") and secret not in stored
    office.clock.now += timedelta(seconds=30)
    code = pyotp.TOTP(secret).at(office.clock())
    assert office.staff.sign_in("olga", PASSWORD, code, "10.0.0.1").name == "olga"


def test_a_session_ends_after_twelve_hours_however_used(office: Office) -> None:
    staffed(office)
    token = office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1").token
    used = timedelta(0)
    while used + timedelta(minutes=29) <= timedelta(hours=12):
        office.clock.now += timedelta(minutes=29)
        used += timedelta(minutes=29)
        assert office.staff.session(token) is not None, used
    office.clock.now += timedelta(minutes=29)
    assert office.staff.session(token) is None
    assert office.uow.store.sessions == {}


def test_passwords_are_used_as_typed(office: Office) -> None:
    spaced = "  con spazi intorno  "
    office.staff.add("piero", "operatore", spaced, CLERK)
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("piero", spaced.strip(), "", "10.0.0.1")
    assert office.staff.sign_in("piero", spaced, "", "10.0.0.1").name == "piero"


def test_a_password_stored_trimmed_by_an_older_version_still_works(office: Office) -> None:
    staffed(office)
    trimmed = replace(
        office.uow.store.staff["olga"],
        password_hash=FAST_ARGON2.hash("con spazi intorno"),
        password_trimmed=True,
    )
    office.uow.store.staff["olga"] = trimmed
    assert office.staff.sign_in("olga", "  con spazi intorno ", "", "10.0.0.1").name == "olga"
    assert office.staff.sign_in("olga", "con spazi intorno", "", "10.0.0.1").name == "olga"
    office.staff.passwd("olga", "  con spazi intorno ", CLERK)  # from now on, as typed
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("olga", "con spazi intorno", "", "10.0.0.1")
    assert office.staff.sign_in("olga", "  con spazi intorno ", "", "10.0.0.1").name == "olga"


class MeanwhileHasher(PasswordHasher):
    """Runs `meanwhile` while it checks a password, as another request would."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.meanwhile = meanwhile

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # type: ignore[override]
        self.meanwhile()
        return super().verify(hash, password)


def test_an_account_disabled_or_changed_during_the_check_is_refused(office: Office) -> None:
    staffed(office)
    for change in (
        lambda: office.staff.passwd("olga", "un'altra password lunga", CLERK),
        lambda: office.staff.disable("olga", CLERK),
    ):
        office.staff.hasher = MeanwhileHasher(change)
        with pytest.raises(SignInRefused, match="non validi"):
            office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1")
        office.staff.hasher = FAST_ARGON2
    assert office.uow.store.sessions == {}


def test_a_success_does_not_count_against_the_client_address(office: Office) -> None:
    staffed(office)
    for n in range(4):
        with pytest.raises(SignInRefused, match="non validi"):
            office.staff.sign_in(f"utente{n}", PASSWORD, "", "192.0.2.9")
    for name in ("anna", "olga", "anna"):
        assert office.staff.sign_in(name, PASSWORD, "", "192.0.2.9").name == name
    with pytest.raises(SignInRefused, match="non validi"):
        office.staff.sign_in("utente9", PASSWORD, "", "192.0.2.9")
    with pytest.raises(SignInRefused, match="riprovare"):
        office.staff.sign_in("anna", PASSWORD, "", "192.0.2.9")


def test_operators_cannot_manage_staff_import_or_reset_the_breaker(office: Office) -> None:
    staffed(office)
    with pytest.raises(NotPermitted):
        office.staff.add("nuovo", "operatore", PASSWORD, OPERATOR)
    with pytest.raises(NotPermitted):
        office.directory.import_csv(b"", OPERATOR, prune=False, dry_run=True)
    with pytest.raises(NotPermitted):
        office.limits.reset(OPERATOR)
    with pytest.raises(NotPermitted):
        office.review.discard(pending(office, "x@example.org"), Actor("ospite", "web"))
    office.limits.reset(ADMIN)
    office.staff.add("nuovo", "operatore", PASSWORD, ADMIN)
    office.directory.set_language("T3001", "EN", OPERATOR)
    assert office.uow.store.people["T3001"].language == "en"
    with pytest.raises(DeskError, match="ISO 639-1"):
        office.directory.set_language("T3001", "english", OPERATOR)


def test_every_decision_lands_in_the_audit_log_from_either_door(office: Office) -> None:
    first = pending(office, "g.esposito@example.org")
    second = pending(office, "g.esposito@example.org")
    third = pending(office, "g.esposito@example.org")
    office.review.approve(first, "T3001", CLERK)
    office.review.reject(second, "non è lui", True, OPERATOR)
    office.review.discard(third, OPERATOR)
    entries, total = office.audit.listing(AuditFilter(actor="olga"))
    assert total == 2
    assert [(e.action, e.item, e.source) for e in entries] == [
        ("review.discarded", f"richiesta {third}", "web"),
        ("review.rejected", f"richiesta {second}", "web"),
    ]
    assert "non è lui" in (entries[1].detail or "")
    (cli,), _ = office.audit.listing(AuditFilter(action="review.approved"))
    assert (cli.actor, cli.source) == ("segreteria", "cli")


def test_the_second_decider_learns_who_decided_first(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    office.review.discard(item_id, OPERATOR)
    with pytest.raises(AlreadyDecided, match="già deciso da olga") as lost:
        office.review.reject(item_id, "no", False, ADMIN)
    assert lost.value.by == "olga (web)"
    assert len([e for e in office.uow.store.audit if e.action.startswith("review.")]) == 1


def test_the_audit_csv_neutralises_formulas(office: Office) -> None:
    office.audit.record(CLERK, "directory.language", "=HYPERLINK(1)", "+cmd")
    text = "".join(office.audit.export_csv(AuditFilter()))
    lines = text.splitlines()
    assert lines[0] == "id,quando,chi,da,azione,oggetto,dettagli"
    assert "'=HYPERLINK(1)" in lines[1] and "'+cmd" in lines[1]
    office.audit.record(CLERK, "directory.language", "\t=1+1", "\r@SUM(1)")
    office.audit.record(CLERK, "directory.language", "-1", "=CMD|' /C calc'!A0")
    rows = list(csv.reader(io.StringIO("".join(office.audit.export_csv(AuditFilter())))))
    assert [row[5:] for row in rows[1:3]] == [
        ["-1", "'=CMD|' /C calc'!A0"],
        ["'\t=1+1", "'\r@SUM(1)"],
    ]


def test_the_queue_filters_by_reason_kind_and_age(office: Office) -> None:
    old = pending(office, "a@example.org")
    office.clock.now += timedelta(days=3)
    new = pending(office, "b@example.org", kind="student")
    items, total = office.review.queue(office_filter(kind="student"))
    assert ([i.id for i in items], total) == ([new], 1)
    items, _ = office.review.queue(office_filter(older_than=office.clock() - timedelta(days=1)))
    assert [i.id for i in items] == [old]
    assert all(i.raw is None for i in items)


def office_filter(**kw: Any) -> ReviewFilter:
    return ReviewFilter(**kw)


def test_housekeeping_removes_idle_sessions(office: Office) -> None:
    from credmail.service.privacy import Retention

    staffed(office)
    office.staff.sign_in("olga", PASSWORD, "", "10.0.0.1")
    office.clock.now += timedelta(minutes=10)
    kept = office.staff.sign_in("anna", PASSWORD, "", "10.0.0.1").token
    office.clock.now += timedelta(minutes=25)
    with office.uow() as uow:
        purged = Retention(30).run(uow, office.clock())
        uow.commit()
    assert purged["staff_sessions"] == 1
    assert office.staff.session(kept) is not None
