"""A small per-process map whose entries expire: the short-lived caches of users, authors and
room sizes. When it reaches its size it is emptied whole: simpler than LRU, and every entry is
cheap to read again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def put_many(self, items: Iterable[tuple[K, V]], ttl: float) -> None:
        if ttl <= 0:
            return
        expires = time.monotonic() + ttl
        with self._lock:
            for key, value in items:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
                self._entries[key] = (expires, value)

    def put(self, key: K, value: V, ttl: float) -> None:
        self.put_many([(key, value)], ttl)

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
