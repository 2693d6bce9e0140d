"""Celery tasks of search, and how a room's indexing gets queued.

Task names are pinned to where they were first defined, so tasks queued before a deploy and the
beat schedule (settings.CELERY_BEAT_SCHEDULE) still resolve.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from search import indexing

logger = logging.getLogger(__name__)

PENDING_FLAG_SECONDS = 60  # a lost task delays a room's index at most this long (or one sweep)


def _pending_key(room_id: int) -> str:
    return f"search-pending:{room_id}"


@shared_task(name="messaging.tasks.index_room", ignore_result=True, acks_late=True, max_retries=None)
def index_room(room_id: int) -> int:
    """Clear the room's flag, then catch up (a change committed after the clear queues the next run)."""
    try:
        cache.delete(_pending_key(room_id))
    except Exception:  # Redis down: the flag expires by itself
        logger.warning("could not clear the indexing flag of room %s", room_id, exc_info=True)
    return indexing.catch_up_room(room_id)


@shared_task(name="search.tasks.index_rooms", ignore_result=True, acks_late=True, max_retries=None)
def index_rooms(room_ids: list[int]) -> int:
    """Several rooms in one task (what one process posted to in one INDEXING_COALESCE_SECONDS):
    a burst over many rooms costs the worker one task, not one per room."""
    try:
        cache.delete_many([_pending_key(r) for r in room_ids])
    except Exception:  # Redis down: the flags expire by themselves
        logger.warning("could not clear the indexing flags of rooms %s", room_ids, exc_info=True)
    return indexing.catch_up_rooms(room_ids)


@shared_task(name="messaging.tasks.index_sweep", ignore_result=True)
def index_sweep() -> int:
    return indexing.catch_up_all()


def schedule(room_id: int) -> None:
    """Ask a worker to catch the room up; never fails the caller (the sweep is the safety net).

    A busy room gets one queued task, not one per message: a flag (SET NX in the shared cache)
    marks a task as queued, and the task clears it before it reads the room's head, so a change
    committed after that read always queues the next run. With a worker (not eager), the rooms
    of this process's posts are gathered for INDEXING_COALESCE_SECONDS and scheduled together
    by one thread, in one task, so a burst costs the writers nothing and the worker one task.
    """
    # Celery's own flag (what `delay` obeys), not the setting it was configured from.
    if index_room.app.conf.task_always_eager or settings.INDEXING_COALESCE_SECONDS <= 0:
        _queue_rooms([room_id])
        return
    _coalescer.add(room_id)


def _queue_rooms(room_ids: list[int]) -> None:
    """One task for every room of the list not already queued (by its flag)."""
    try:
        unqueued = [r for r in room_ids if cache.add(_pending_key(r), 1, timeout=PENDING_FLAG_SECONDS)]
        if len(unqueued) == 1:
            index_room.delay(unqueued[0])
        elif unqueued:
            index_rooms.delay(unqueued)
    except Exception:
        logger.warning("could not schedule indexing of rooms %s; the sweep will", room_ids, exc_info=True)


class _Coalescer:
    """Rooms to schedule, flushed by one daemon thread a short while after the first one arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: set[int] = set()
        self._wake = threading.Event()
        self._pid = 0  # the thread belongs to the process that started it (not to a fork's child)

    def add(self, room_id: int) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._rooms = set()
                self._wake = threading.Event()
                threading.Thread(target=self._run, args=(self._wake,), name="index-scheduler", daemon=True).start()
            self._rooms.add(room_id)
            self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        while True:
            wake.wait()
            time.sleep(settings.INDEXING_COALESCE_SECONDS)
            with self._lock:
                wake.clear()
                rooms, self._rooms = self._rooms, set()
            _queue_rooms(sorted(rooms))


_coalescer = _Coalescer()


def on_room_messages_changed(sender: Any, *, room_id: int, **_: Any) -> None:
    """Receiver of messaging.signals.room_messages_changed (connected in search/apps.py)."""
    schedule(room_id)
