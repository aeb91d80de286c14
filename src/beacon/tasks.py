"""Celery tasks (optional: import this module only where Celery is installed).

``notify()`` works inside any task as it is; this task is for sending from code that
should not wait for the database at all::

    from beacon.tasks import notify_task
    notify_task.delay(user.pk, "Your export is ready", url="/exports/12/")
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .notifications import notify


@shared_task(name="beacon.notify")
def notify_task(user_id: Any, message: str, **data: Any) -> int:
    return notify(user_id, message, **data).seq
