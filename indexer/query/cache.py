"""A bounded cache of whole search answers, keyed by the request and the state of the index that answered.

The web app runs one per worker process: a repeated search (the back button, a shared link, reloading a
result page, the same common query from several radiologists) is answered without ranking again. An
answer is only reused while the index is in exactly the state that produced it: the key holds the
backend's `state_token()` (the embedded backend: the live version and its write counter, so any write,
reindex or version switch makes every older entry unreachable). A backend without a cheap state token
(Elasticsearch, whose documents can change under an alias without the app knowing) is never cached.

Answers are stored as JSON bytes (orjson) and decoded on every hit, so no caller can change what the
next caller gets.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import orjson


class AnswerCache:
    """Least-recently-used answers, at most `max_entries` of them and `max_bytes` of JSON in all.

    Thread-safe (a gunicorn worker's request threads share one). `hits` and `misses` count lookups.
    """

    def __init__(self, max_entries: int = 512, max_bytes: int = 64 << 20):
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("cache sizes must be >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> dict | None:
        """A fresh copy of the answer stored under `key`, or None (counted as a miss)."""
        with self._lock:
            blob = self._entries.get(key)
            if blob is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return orjson.loads(blob)

    def put(self, key: Hashable, answer: dict) -> None:
        """Store `answer` (JSON-serialisable) under `key`, evicting the least recently used beyond the bounds."""
        if not self.enabled:
            return
        try:  # string keys only, the usual case, are 20% quicker to encode without OPT_NON_STR_KEYS
            blob = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            try:
                blob = orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
            except TypeError:   # something JSON cannot hold: the answer is served, just not kept
                return
        if len(blob) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = blob
            self._bytes += len(blob)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def stats(self) -> dict:
        """Entries, bytes held, the entry bound, hits and misses (for /api/stats)."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_entries": self.max_entries,
                    "hits": self.hits, "misses": self.misses}


__all__ = ["AnswerCache"]
