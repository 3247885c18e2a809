"""What a process keeps between requests: values named by everything they depend on (a
results version, a set of roles and a language), so that nothing ever has to clear them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class Memo:
    """A small thread-safe LRU map: `get(key, build)` builds a value once per key."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, build: Callable[[], object]):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()  # outside the lock: two threads may build the same value, harmlessly
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
