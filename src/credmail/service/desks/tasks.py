"""The worklist: verified tasks "da eseguire nel registro", and marking them done.

Done means the secretariat resent the credentials from the register's back office;
credmail then tells the person, at the address the link went to (the address on file
they proved they control), that the register has sent them (template `task_done`).
"""

from __future__ import annotations

from datetime import datetime

from credmail.core.values import SendReply
from credmail.service.desks.base import DeskError
from credmail.service.outbox.queue import Mailer
from credmail.service.ports import Clock, RegisterTask, UnitOfWork, UnitOfWorkFactory
from credmail.service.review import Actor

TEMPLATE_TASK_DONE = "task_done"
OPEN, DONE = "open", "done"


class TasksDesk:
    def __init__(self, uow: UnitOfWorkFactory, mailer: Mailer, clock: Clock) -> None:
        self.uow, self.mailer, self.clock = uow, mailer, clock

    def listing(self, status: str | None = OPEN) -> list[RegisterTask]:
        """Open tasks by default; `None` lists every task."""
        with self.uow(read_only=True) as uow:
            return uow.tasks.listing(status)

    def get(self, task_id: int) -> RegisterTask:
        with self.uow(read_only=True) as uow:
            task = uow.tasks.get(task_id)
        if task is None:
            raise DeskError(f"nessuna attività con numero {task_id}")
        return task

    def done(self, task_id: int, actor: Actor, note: str | None = None) -> RegisterTask:
        now = self.clock()
        with self.uow() as uow:
            task = uow.tasks.get(task_id)
            if task is None:
                raise DeskError(f"nessuna attività con numero {task_id}")
            if not uow.tasks.mark_done(task_id, now, str(actor), note or None):
                raise DeskError(f"l'attività {task_id} è già stata segnata come eseguita")
            if task.address:
                self._notify(uow, task, note, now)
            uow.commit()
            done = uow.tasks.get(task_id)
        assert done is not None
        return done

    def _notify(self, uow: UnitOfWork, task: RegisterTask, note: str | None, now: datetime) -> None:
        assert task.address is not None
        reply = SendReply(TEMPLATE_TASK_DONE, task.address, about=task.username)
        context = {"username": task.username, "note": note or ""}
        self.mailer.queue(uow, reply, None, now, context=context)
