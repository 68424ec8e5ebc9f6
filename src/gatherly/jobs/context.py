"""The request id, carried from a request into the tasks it queues (issue 20).

A task queued while a request id is bound (``gatherly.core.logs``) gets it appended to its
Huey task id (``<uuid>+<request id>``); when a worker runs the task, its lines carry that
``request_id`` and the task's name and id (``task``, ``task_id``), and the tasks it queues
in turn carry the id on. Periodic tasks, queued by the scheduler, have none.

The id rides in the task id, not in the message's arguments: a worker of an earlier release
runs such a message unchanged (an unknown keyword argument would fail the task), and a
retried or scheduled task keeps it without help.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog
from huey import Huey  # type: ignore[import-untyped]
from huey.api import Task  # type: ignore[import-untyped]

from gatherly.core import logs

SEPARATOR = "+"  # not in a UUID, nor in a request id (logs.SANE_ID)


def request_id_of(task: Any) -> str | None:
    """The request id a task was queued under, if any."""
    return str(task.id).partition(SEPARATOR)[2] or None


class RequestIdsMixin(Huey):  # type: ignore[misc]
    """Huey that stamps queued tasks with the bound request id and binds it (with the
    task's name and id) while a worker runs them."""

    def enqueue(self, task: Any) -> Any:
        request_id = logs.current_request_id()
        if request_id and isinstance(task, Task) and SEPARATOR not in task.id:
            task.id = f"{task.id}{SEPARATOR}{request_id}"
            task.revoke_id = f"r:{task.id}"
        return super().enqueue(task)

    def execute(self, task: Any, timestamp: Any = None) -> Any:
        bound = {"task": task.name, "task_id": task.id}
        request_id = request_id_of(task)
        if request_id:
            bound[logs.REQUEST_ID] = request_id
        with structlog.contextvars.bound_contextvars(**bound):
            return super().execute(task, timestamp)


@functools.cache
def with_request_ids(huey_class: type[Huey]) -> type[Huey]:
    """``huey_class`` (``SqliteHuey``, ``RedisExpireHuey`` …) carrying request ids."""
    return type(huey_class.__name__, (RequestIdsMixin, huey_class), {"__module__": __name__})
