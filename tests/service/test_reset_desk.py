"""The reset desk and the tasks desk on the fakes: spending, claiming, releasing, auditing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from credmail.core.recipients import link_kind, recipients
from credmail.service.desks import DeskError, ResetDesk, TasksDesk
from credmail.service.desks.reset import SpendStatus
from credmail.service.link_backends import (
    BackendKind,
    SpendOutcome,
    SpendRequest,
    SpendResult,
    WorklistBackend,
)
from credmail.service.links import TokenLinkIssuer
from credmail.service.ports import TokenState
from tests.service.conftest import CLERK, Office


def issue(office: Office, username: str) -> str:
    issuer = TokenLinkIssuer("https://registro.example.org", 60)
    now = office.clock()
    with office.uow() as uow:
        person = uow.directory.get(username)
        assert person is not None
        today = now.date()
        guardians = uow.directory.guardians_of(username) if person.is_minor_on(today) else []
        address = recipients(person, guardians, today)[0]
        issued = issuer.issue(uow, person, link_kind(person, today)[0], address, now)
        assert issued.selector
        minted = issuer.mint(uow, issued.selector, now)
        assert minted is not None
        uow.commit()
    return minted.url.rsplit("/", 1)[1]


@dataclass
class ScriptedBackend:
    """An external backend answering what the test scripted, recording each request."""

    outcomes: list[SpendOutcome | Exception]
    kind: BackendKind = BackendKind.WEBHOOK
    needs_password: bool = False
    seen: list[SpendRequest] = field(default_factory=list)
    during: list[object] = field(default_factory=list)  # what ran while the call was made

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        return ["Troppo corta."] if len(password) < 12 else []

    def spend(self, request: SpendRequest) -> SpendOutcome:
        self.seen.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def worklist(office: Office) -> ResetDesk:
    return ResetDesk(office.uow, office.clock, WorklistBackend())


def test_look_never_writes(office: Office) -> None:
    token = issue(office, "T3001")
    commits = office.uow.commits
    view = worklist(office).look(token)
    assert view.valid and view.username == "T3001" and view.name == "Giovanna Esposito"
    assert view.expires_at == office.clock() + timedelta(minutes=60)
    assert office.uow.commits == commits


def test_worklist_spend_creates_one_task_and_audits_it(office: Office) -> None:
    token = issue(office, "T3001")
    desk = worklist(office)
    office.clock.now += timedelta(minutes=5)
    result = desk.spend(token, client="203.0.113.9")
    assert result.status is SpendStatus.DONE and result.task_id is not None
    [task] = office.uow.store.tasks.values()
    assert task[0].username == "T3001" and task[0].confirmed_at == office.clock()
    assert task[0].requested_at == office.clock() - timedelta(minutes=5)
    assert task[1] == token.split(".")[0]
    [event] = office.uow.store.link_audit
    assert (event.event, event.result, event.client) == ("spent", "done", "203.0.113.9")
    again = desk.spend(token)
    assert again.status is SpendStatus.INVALID and again.view.state is TokenState.USED
    assert len(office.uow.store.tasks) == 1


def test_an_external_backend_spends_only_on_done(office: Office) -> None:
    token = issue(office, "T3001")
    backend = ScriptedBackend(
        [
            SpendOutcome(SpendResult.RETRY_LATER, detail="directory down"),
            RuntimeError("boom"),
            SpendOutcome(SpendResult.DONE),
        ]
    )
    desk = ResetDesk(office.uow, office.clock, backend)
    assert desk.spend(token).status is SpendStatus.RETRY_LATER
    assert desk.look(token).valid  # released: still usable
    assert desk.spend(token).status is SpendStatus.RETRY_LATER  # an exception keeps it too
    assert desk.spend(token).status is SpendStatus.DONE
    assert desk.look(token).state is TokenState.USED
    assert [r.request_id for r in backend.seen] == [token.split(".")[0]] * 3
    results = [(e.event, e.result, e.detail) for e in office.uow.store.link_audit]
    assert results == [
        ("backend_call", "retry_later", "directory down"),
        ("backend_call", "retry_later", "error: RuntimeError"),
        ("backend_call", "done", None),
        ("spent", "done", None),
    ]
    assert office.uow.store.tasks == {}


def test_a_rejected_password_keeps_the_link_and_shows_the_problems(office: Office) -> None:
    token = issue(office, "T3001")
    backend = ScriptedBackend(
        [SpendOutcome(SpendResult.REJECTED, problems=("La password è troppo comune.",))],
        kind=BackendKind.LDAP,
        needs_password=True,
    )
    desk = ResetDesk(office.uow, office.clock, backend)
    short = desk.spend(token, "corta")
    assert short.status is SpendStatus.REJECTED and short.problems == ("Troppo corta.",)
    assert backend.seen == []  # the policy refused it before any call
    common = desk.spend(token, "una-password-comune")
    assert common.problems == ("La password è troppo comune.",)
    assert backend.seen[0].new_password == "una-password-comune"
    assert desk.look(token).valid
    assert "una-password" not in repr(office.uow.store.link_audit)


def test_a_claimed_link_cannot_be_spent_twice_at_once(office: Office) -> None:
    token = issue(office, "T3001")
    selector = token.split(".")[0]
    with office.uow() as uow:  # another request holds it while its backend runs
        assert uow.tokens.claim(selector, office.clock(), office.clock() + timedelta(minutes=2))
        uow.commit()
    backend = ScriptedBackend([SpendOutcome(SpendResult.DONE)])
    desk = ResetDesk(office.uow, office.clock, backend)
    assert desk.spend(token).status is SpendStatus.RETRY_LATER
    assert backend.seen == []
    office.clock.now += timedelta(minutes=3)  # a claim left by a crash runs out
    assert desk.spend(token).status is SpendStatus.DONE


def test_tasks_done_mails_the_person_once(office: Office) -> None:
    token = issue(office, "T3001")
    worklist(office).spend(token)
    desk = TasksDesk(office.uow, office.review.mailer, office.clock)
    [task] = desk.listing()
    done = desk.done(task.id, CLERK, "inviate oggi", "Le abbiamo scritto anche via SMS.")
    assert (done.status, done.done_by, done.note) == ("done", str(CLERK), "inviate oggi")
    assert desk.listing() == [] and len(desk.listing(None)) == 1
    [mail] = office.uow.store.outbox.values()
    assert mail.template == "task_done" and mail.recipient == task.address
    assert mail.raw is not None and b"Le abbiamo scritto anche via SMS." in mail.raw
    assert b"inviate oggi" not in mail.raw  # the internal note is never mailed
    [entry] = [e for e in office.uow.store.audit if e.action == "task.done"]
    assert "nota interna: inviate oggi" in (entry.detail or "")
    assert "Le abbiamo scritto anche via SMS." in (entry.detail or "")
    with pytest.raises(DeskError, match="già"):
        desk.done(task.id, CLERK)
    with pytest.raises(DeskError, match="nessuna"):
        desk.done(999, CLERK)
    assert len(office.uow.store.outbox) == 1


def test_privacy_shows_and_forgets_tasks_and_retention_purges_done_ones(office: Office) -> None:
    from credmail.service.privacy import Retention

    worklist(office).spend(issue(office, "T3001"))
    worklist(office).spend(issue(office, "A4001"))
    held = office.privacy.show("g.esposito@example.org").as_json()
    assert [t["username"] for t in held["register_tasks"]] == ["T3001"]
    erased = office.privacy.forget("g.esposito@example.org", CLERK)
    assert erased.counts["register_tasks"] == 1
    desk = TasksDesk(office.uow, office.review.mailer, office.clock)
    [left] = desk.listing()
    assert left.username == "A4001"
    desk.done(left.id, CLERK)
    office.clock.now += timedelta(days=31)
    with office.uow() as uow:
        purged = Retention(30).run(uow, office.clock())
        uow.commit()
    assert purged["register_tasks"] == 1 and purged["link_audit"] == 2
    assert desk.listing(None) == []
