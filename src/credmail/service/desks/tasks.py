"""The worklist: verified tasks "da eseguire nel registro", and marking them done.

Done means the secretariat resent the credentials from the register's back office;
credmail then tells the person, at the address the link went to (the address on file
they proved they control), that the register has sent them (template `task_done`).

Two texts can go with it, kept apart: an internal note (stored with the task and in the
activity log, never mailed) and a message to the family (printed in the mail, after the
secretariat has read the mail it goes in: `preview`).
"""

from __future__ import annotations

from credmail.core.values import SendReply
from credmail.service.desks.base import DeskError
from credmail.service.outbox.queue import Mailer, MailPreview
from credmail.service.ports import Clock, RegisterTask, UnitOfWork, UnitOfWorkFactory
from credmail.service.review import Actor, audit_entry

TEMPLATE_TASK_DONE = "task_done"
OPEN, DONE = "open", "done"
TASK_STATUSES = (OPEN, DONE)


class TasksDesk:
    def __init__(self, uow: UnitOfWorkFactory, mailer: Mailer, clock: Clock) -> None:
        self.uow, self.mailer, self.clock = uow, mailer, clock

    def listing(self, status: str | None = OPEN) -> list[RegisterTask]:
        """Open tasks by default; `None` lists every task."""
        with self.uow(read_only=True) as uow:
            return uow.tasks.listing(status)

    def get(self, task_id: int) -> RegisterTask:
        with self.uow(read_only=True) as uow:
            return _task(uow, task_id)

    def preview(self, task_id: int, message: str | None = None) -> MailPreview:
        """The mail `done` would send, with `message` in it; nothing is written."""
        with self.uow(read_only=True) as uow:
            task = _open(uow, task_id)
            reply = _reply(task, message)
            if reply is None:
                raise DeskError(f"l'attività {task_id} non ha un indirizzo: nessun avviso")
            return self.mailer.preview(uow, reply, self.clock(), _context(task, message))

    def done(
        self,
        task_id: int,
        actor: Actor,
        note: str | None = None,
        message: str | None = None,
    ) -> RegisterTask:
        """Mark the task done and tell the person; `note` is internal (never mailed),
        `message` goes in the mail."""
        now = self.clock()
        note, message = note or None, message or None
        with self.uow() as uow:
            task = _task(uow, task_id)
            reply = _reply(task, message)
            if not uow.tasks.mark_done(task_id, now, str(actor), note):
                raise DeskError(f"l'attività {task_id} è già stata segnata come eseguita")
            if reply is not None:
                self.mailer.queue(uow, reply, None, now, context=_context(task, message))
                uow.nudge()  # the daemon sends it at once
            detail = audit_detail(note, message, mailed=reply is not None)
            uow.audit.add(audit_entry(actor, now, "task.done", f"attività {task_id}", detail))
            uow.commit()
            done = uow.tasks.get(task_id)
        assert done is not None
        return done


def _task(uow: UnitOfWork, task_id: int) -> RegisterTask:
    task = uow.tasks.get(task_id)
    if task is None:
        raise DeskError(f"nessuna attività con numero {task_id}")
    return task


def _open(uow: UnitOfWork, task_id: int) -> RegisterTask:
    task = _task(uow, task_id)
    if task.status != OPEN:
        raise DeskError(f"l'attività {task_id} è già stata segnata come eseguita")
    return task


def _reply(task: RegisterTask, message: str | None) -> SendReply | None:
    """The notice to the person; None without an address (then no message can go)."""
    if task.address is None:
        if message:
            raise DeskError(
                f"l'attività {task.id} non ha un indirizzo: il messaggio non può essere inviato"
            )
        return None
    return SendReply(TEMPLATE_TASK_DONE, task.address, about=task.username)


def _context(task: RegisterTask, message: str | None) -> dict[str, str]:
    return {"username": task.username, "message": message or ""}


def audit_detail(note: str | None, message: str | None, *, mailed: bool) -> str:
    said = "avviso inviato per e-mail" if mailed else "nessun avviso (nessun indirizzo)"
    if message:
        said += f" con il messaggio: {message}"
    return f"nota interna: {note}; {said}" if note else said
