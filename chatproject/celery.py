import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

app = Celery("chatproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task, and with
# Django's connection pool it closes the pool too: every indexing task opened new PostgreSQL
# sessions (1.2-3 a post in bench/write_bench.py). The fixup keeps them for this many tasks
# instead; Django's own rule for stale connections runs before each task (below).
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
app.autodiscover_tasks()


@task_prerun.connect
def _drop_unusable_connections(task: Any = None, **_: Any) -> None:
    """What Django does around a request: a broken or too old connection is closed (or handed back
    to the pool), so a database restart costs one failed task at most, not every task after it.
    Not for a task run eagerly inside a request, whose connection is the request's."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
