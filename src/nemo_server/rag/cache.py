"""Recent search results per process, keyed by user, index generation and request."""

from __future__ import annotations

import threading
from collections import OrderedDict

from nemo_server.rag.schemas import SearchHit


class SearchCache:
    """Recent search results keyed by user, index generation and request; dropped per user."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, str], list[SearchHit]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> list[SearchHit] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[str, int, str], value: list[SearchHit]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop_user(self, user_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == user_id]:
                del self._items[key]
