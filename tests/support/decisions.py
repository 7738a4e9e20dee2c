"""Decisions the secretariat makes while the daemon runs: held requests to approve or
reject, register tasks to mark done (tests and bench/nudge.py)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from credmail.bootstrap import App
from credmail.core.values import RequestKind
from credmail.service.ports import ReviewItem, ReviewStatus
from credmail.service.review import Actor
from tests.support.links import issue_token

DESK = Actor("segreteria", "cli")


def people_csv(n: int) -> bytes:
    """`n` teachers per decision kind, each with an address of their own: A (approved),
    R (their request rejected with a notice), D (their register task marked done)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["role", "username", "first_name", "last_name", "birth_date", "emails", "students", "class"]
    )
    for i in range(n):
        for prefix in "ARD":
            writer.writerow(
                [
                    "teacher",
                    f"{prefix}{i:04d}",
                    "Nome",
                    f"Cognome{i}",
                    "",
                    _address(prefix, i),
                    "",
                    "",
                ]
            )
    return out.getvalue().encode()


def _address(prefix: str, i: int) -> str:
    return f"{prefix.lower()}{i:04d}@example.org"


def hold(app: App, sender: str, n: int) -> int:
    """A request held for review (as the daemon would hold one); its id."""
    message_id = f"<held-{n}-{sender}>"
    with app.uow() as uow:
        uow.review.add(
            ReviewItem(
                0,
                app.clock(),
                ReviewStatus.PENDING,
                RequestKind.ADULT,
                sender,
                message_id,
                "Richiesta credenziali",
                ("unverified_sender",),
                None,
            ),
            None,
        )
        uow.commit()
    return next(item.id for item in app.review.pending() if item.message_id == message_id)


@dataclass(frozen=True)
class Decision:
    """One decision ready to make: `make()` commits it; its mail goes to `to`."""

    kind: str
    username: str
    to: str
    target: int
    app: App

    def make(self) -> None:
        if self.kind == "approve":
            self.app.review.approve(self.target, self.username, DESK, confirmed=True)
        elif self.kind == "reject":
            self.app.review.reject(self.target, "non è una richiesta", True, DESK)
        else:
            self.app.desks.tasks.done(self.target, DESK)


def prepare(app: App, i: int, kind: str) -> Decision:
    """The i-th decision of `kind` (approve, reject, done), its item or task made now."""
    prefix = {"approve": "A", "reject": "R", "done": "D"}[kind]
    username, to = f"{prefix}{i:04d}", _address(prefix, i)
    if kind == "done":
        task_id = app.desks.reset.spend(issue_token(app, username)).task_id
        assert task_id is not None
        return Decision(kind, username, to, task_id, app)
    return Decision(kind, username, to, hold(app, to, i), app)
