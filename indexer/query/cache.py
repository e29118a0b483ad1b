"""A bounded cache of whole search answers, keyed by the request and the state of the index that answered.

The web app runs one per worker process: a repeated search (the back button, a shared link, reloading a
result page, the same common query from several radiologists) is answered without ranking again. An
answer is only reused while the index is in exactly the state that produced it: the key holds the
backend's `state_token()` (the embedded backend: the live version and its write counter, so any write,
reindex or version switch makes every older entry unreachable). A backend without a cheap state token
(Elasticsearch, whose documents can change under an alias without the app knowing) is never cached.

Answers are stored as JSON bytes (orjson) and decoded on every hit, so no caller can change what the
next caller gets.

An answer is kept the second time its request misses, not the first: most searches are asked once, and
encoding each one's answer for the cache was 4-6% of a new search's CPU time in the app
(scripts/ab_search.py; and one-off searches would push the answers asked again out of the cache). The
requests that missed are remembered (keys only, as many as the cache holds answers), so a search asked
again soon is answered from the cache from its third time on.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import orjson


class AnswerCache:
    """Least-recently-used answers, at most `max_entries` of them and `max_bytes` of JSON in all.

    Thread-safe (a gunicorn worker's request threads share one). `hits` and `misses` count lookups.

    Args:
        max_entries / max_bytes: the bounds (0: no cache).
        second_miss: keep an answer only when its key has missed before (among the last `max_entries` keys
            that missed); False: keep every answer put.
    """

    def __init__(self, max_entries: int = 512, max_bytes: int = 64 << 20, second_miss: bool = True):
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("cache sizes must be >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.second_miss = second_miss
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._missed: OrderedDict[Hashable, bool] = OrderedDict()  # key -> whether it missed twice
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
                if self.second_miss:
                    self._note_miss(key)
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return orjson.loads(blob)

    def _note_miss(self, key: Hashable) -> None:
        """Remember a key that missed (under the lock); a second miss makes its answer worth keeping."""
        missed = self._missed
        if key in missed:
            missed[key] = True
            missed.move_to_end(key)
            return
        missed[key] = False
        while len(missed) > self.max_entries:
            missed.popitem(last=False)

    def put(self, key: Hashable, answer: dict) -> None:
        """Store `answer` (JSON-serialisable) under `key`, evicting the least recently used beyond the bounds; with
        `second_miss`, only when the key has missed twice (else nothing is encoded or kept)."""
        if not self.enabled:
            return
        if self.second_miss:
            with self._lock:
                if not self._missed.get(key):
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
            self._missed.pop(key, None)
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = blob
            self._bytes += len(blob)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def stats(self) -> dict:
        """Entries, bytes held, the entry bound, hits, misses and whether answers are kept on the second miss (for
        /api/stats)."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_entries": self.max_entries,
                    "hits": self.hits, "misses": self.misses, "second_miss": self.second_miss}


__all__ = ["AnswerCache"]
