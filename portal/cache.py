"""What a process keeps between requests: values named by everything they depend on (a
results version, a set of roles and a language), so that nothing ever has to clear them."""

from __future__ import annotations

import threading
import time
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


class Timed:
    """Values read again once they are older than `seconds` (given at each call, from the
    configuration): for what changes rarely and may show a few seconds late, such as names
    and settings. With 0 seconds every call reads afresh."""

    def __init__(self):
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, key, seconds: float, build: Callable[[], object]):
        if seconds <= 0:
            return build()
        now = time.monotonic()
        found = self._items.get(key)
        if found is not None and now - found[0] < seconds:
            return found[1]
        value = build()
        with self._lock:
            self._items[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget everything (a change made by this process shows at once)."""
        with self._lock:
            self._items.clear()
