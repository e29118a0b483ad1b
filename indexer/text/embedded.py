"""Embedded text backend: SQLite FTS5 with BM25, in the same SQLite database as the image catalogue.

Why SQLite FTS5 rather than tantivy:
- It is already here. `sqlite3` ships with Python and its SQLite is built with FTS5 on every
  mainstream platform; tantivy would add a compiled Rust wheel to install, pin and keep in step.
- One database, one transaction. The image catalogue (table `images`: image id, report, view,
  split, content hash, model version, the stored document) and its full-text index (`images_fts`)
  and facet keywords (`keywords`) live in one file and change in one transaction, so the catalogue
  and the text index can never disagree, and a crash mid-batch leaves neither half-written.
- BM25 is built in (`bm25()` with per-column weights), so relevance matches Elasticsearch's
  default similarity closely enough that one contract test suite holds both backends.
- A version is one file, so "build aside, then switch" is a file rename (see below); readers
  need no server and no lock manager.
What tantivy would do better: faster indexing and querying well past a million documents, and
richer analysers. For one hospital's archive (thousands to a few hundred thousand images) FTS5
is fast enough (see the README's indexing numbers), and the Elasticsearch backend is the path
for anything larger.

Analysis matches the Elasticsearch backend: the `unicode61` tokenizer (lower case, diacritics
folded) and Lucene's English stop words removed from queries; no stemming, because the
Elasticsearch server the project tests against has no stemmer either.

On disk, under `root`:

    LIVE                              the live version's name; replaced atomically (write + rename)
    versions/<version>/catalogue.sqlite   one complete index version (WAL mode)
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import orjson

from indexer.documents import FILTER_FIELDS, TEXT_FIELDS, keyword_values, validate_document
from indexer.errors import DocumentNotFound, IndexerError, IndexNotFound, IndexUnavailable
from indexer.files import atomic_write
from indexer.text.base import (
    Filters,
    Hit,
    SearchResult,
    TextBackend,
    WriteResult,
    check_facets,
    check_k,
    check_version_name,
    matched_fields,
    new_version_name,
    normalise_filters,
    tokenize,
)

DATABASE_NAME = "catalogue.sqlite"
SNAPSHOT_NAME = "ranker.npz"  # the in-memory ranker's arrays (indexer.query.memory), rebuilt after any write
_COUNT_WRITE = ("INSERT INTO meta (key, value) VALUES ('writes', 1) "
                "ON CONFLICT(key) DO UPDATE SET value = value + 1")
FACET_SIZE = 20
DOCUMENT_CACHE = 4096  # decoded documents get_many keeps (most recently asked for)
_COLUMNS = list(TEXT_FIELDS)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS images (
    rowid INTEGER PRIMARY KEY,
    image_id TEXT NOT NULL UNIQUE,
    report_id TEXT,
    view TEXT,
    split TEXT,
    synthetic INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT,
    model_version TEXT,
    document BLOB NOT NULL  -- the stored document: zlib-compressed JSON (see _pack/_unpack)
);
CREATE TABLE IF NOT EXISTS keywords (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    doc INTEGER NOT NULL,
    PRIMARY KEY (field, value, doc)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    {", ".join(_COLUMNS)}, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS build_parts (part TEXT PRIMARY KEY, stats TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);  -- 'writes': a counter of changes
"""


class EmbeddedTextBackend(TextBackend):
    """SQLite FTS5 text index in `root` (see the module docstring for the layout and the why)."""

    name = "embedded"
    cpu_bound = True

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._connections: dict[str, sqlite3.Connection] = {}
        self._lock = threading.RLock()
        self._memory: tuple[str, str, object] | None = None  # (version, _stamp, MemoryIndex)
        self._doc_cache: tuple[str, str, OrderedDict] | None = None  # (version, _stamp, image id -> document)
        self._live_cache: tuple[tuple[int, int], str | None] | None = None  # ((inode, mtime) of LIVE, its version)
        self._stamps: dict[str, tuple[sqlite3.Connection, tuple[int, int], str]] = {}  # version -> _current_stamp memo

    # --- paths and connections ----------------------------------------------------------------------

    def database_path(self, version: str | None = None) -> Path:
        """The SQLite file of a version (the live one when None): the image catalogue and its text index."""
        return self._version_dir(self._resolve(version)) / DATABASE_NAME

    def _version_dir(self, version: str) -> Path:
        return self.root / "versions" / version

    def _resolve(self, version: str | None) -> str:
        if version is None:
            live = self.live_version()
            if live is None:
                raise IndexNotFound(f"no text index in {self.root}: build one with "
                                    "`cxrsearch reindex --images DIR --backend embedded`")
            return live
        if version in self._connections:  # open already: the name was checked then (a search names its version 3x)
            return version
        check_version_name(version)
        if not (self._version_dir(version) / DATABASE_NAME).is_file():
            raise IndexNotFound(f"no index version {version!r} in {self.root}; existing: {self.versions()}")
        return version

    def _connect(self, version: str) -> sqlite3.Connection:
        with self._lock:
            conn = self._connections.get(version)
            if conn is None:
                path = self._version_dir(version) / DATABASE_NAME
                try:
                    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
                    conn.executescript(_SCHEMA)
                except sqlite3.Error as e:
                    raise IndexUnavailable(f"cannot open the text index {path}: {e}") from e
                self._connections[version] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    # --- versions and the alias -------------------------------------------------------------------

    def create(self, version: str | None = None) -> str:
        version = check_version_name(version or new_version_name())
        folder = self._version_dir(version)
        if (folder / DATABASE_NAME).exists():
            raise IndexerError(f"index version {version!r} already exists in {self.root}")
        folder.mkdir(parents=True, exist_ok=True)
        self._connect(version)
        return version

    def versions(self) -> list[str]:
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / DATABASE_NAME).is_file())

    def live_version(self) -> str | None:
        path = self.root / "LIVE"
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            return None
        cached = self._live_cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            name = path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        self._live_cache = (stamp, name)
        return name

    def switch(self, version: str, keep_previous: bool = False) -> str | None:
        version = self._resolve(version)
        with self._lock:
            conn = self._connect(version)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            previous = self.live_version()
            atomic_write(self.root / "LIVE", version + "\n")  # the atomic step
            if previous and previous != version and not keep_previous:
                self.drop(previous)
            return previous if previous != version else None

    def drop(self, version: str) -> None:
        check_version_name(version)
        if version == self.live_version():
            raise IndexerError(f"refusing to drop index version {version!r}: it is live")
        with self._lock:
            conn = self._connections.pop(version, None)
            self._stamps.pop(version, None)
            if conn is not None:
                conn.close()
            shutil.rmtree(self._version_dir(version), ignore_errors=True)

    # --- writes -------------------------------------------------------------------------------------

    def index(self, documents: Iterable[Mapping], version: str | None = None, batch_size: int = 500,
              refresh: bool = True) -> WriteResult:
        version = self._resolve(self._write_target(version))
        result = WriteResult()
        batch: list[Mapping] = []
        for doc in documents:
            batch.append(doc)
            if len(batch) >= batch_size:
                self._write_batch(version, batch, result)
                batch = []
        if batch:
            self._write_batch(version, batch, result)
        return result

    def _write_batch(self, version: str, batch: Sequence[Mapping], result: WriteResult) -> None:
        valid = []
        for doc in batch:
            try:
                validate_document(doc)
                valid.append(doc)
            except IndexerError as e:
                result.failed[str(doc.get("image_id") if isinstance(doc, Mapping) else doc)] = str(e)
        with self._lock:
            with _writing(self._connect(version)) as conn:
                for doc in valid:
                    _upsert(conn, doc)
        result.written += len(valid)

    def update(self, image_id: str, fields: Mapping, version: str | None = None, refresh: bool = True) -> None:
        version = self._resolve(version)
        with self._lock:
            conn = self._connect(version)
            row = conn.execute("SELECT document FROM images WHERE image_id = ?", (image_id,)).fetchone()
            if row is None:
                raise DocumentNotFound(f"no document {image_id!r} in index version {version!r}")
            doc = {**_unpack(row[0]), **fields, "image_id": image_id}
            doc = {k: v for k, v in doc.items() if v is not None}
            validate_document(doc)
            with _writing(conn):
                _upsert(conn, doc)

    def delete(self, image_ids: Iterable[str], version: str | None = None, refresh: bool = True) -> int:
        version = self._resolve(version)
        deleted = 0
        with self._lock:
            with _writing(self._connect(version)) as conn:
                for image_id in dict.fromkeys(image_ids):
                    deleted += _remove(conn, image_id)
        return deleted

    # --- reads --------------------------------------------------------------------------------------

    def search(self, query: str, filters: Filters | None = None, k: int = 10, facets: Sequence[str] | None = None,
               version: str | None = None) -> SearchResult:
        check_k(k)
        wanted_facets = check_facets(facets)
        where = normalise_filters(filters)
        version = self._resolve(version)
        tokens = tokenize(query)
        params: list = []
        if query.strip():
            if not tokens:  # only stop words: nothing to match, as in Elasticsearch
                return SearchResult([], 0, {f: {} for f in wanted_facets}, self.name, version)
            weights = ", ".join(str(w) for _, w in TEXT_FIELDS.values())
            matched = (f"SELECT rowid AS doc, -bm25(images_fts, {weights}) AS score "
                       "FROM images_fts WHERE images_fts MATCH ?")
            params.append(" OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(tokens)))
        else:
            matched = "SELECT rowid AS doc, 0.0 AS score FROM images"
        clauses = []
        for name, values in where.items():
            clauses.append(f"m.doc IN (SELECT doc FROM keywords WHERE field = ? AND value IN ({_marks(values)}))")
            params += [name, *values]
        cte = f"WITH m AS MATERIALIZED ({matched}) SELECT m.doc, m.score FROM m" + (
            " WHERE " + " AND ".join(clauses) if clauses else "")
        with self._lock:
            conn = self._connect(version)
            try:  # the match set is computed once, then ranked, counted and faceted
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS matched (doc INTEGER PRIMARY KEY, score REAL)")
                conn.execute("DELETE FROM temp.matched")
                conn.execute(f"INSERT INTO temp.matched (doc, score) {cte}", params)
                total = conn.execute("SELECT count(*) FROM temp.matched").fetchone()[0]
                rows = conn.execute(
                    "SELECT i.image_id, m.score, i.document FROM temp.matched m JOIN images i ON i.rowid = m.doc "
                    "ORDER BY m.score DESC, i.image_id ASC LIMIT ?", (k,)).fetchall()
                facet_rows = conn.execute(
                    f"SELECT k.field, k.value, count(*) AS n FROM keywords k JOIN temp.matched m ON m.doc = k.doc "
                    f"WHERE k.field IN ({_marks(wanted_facets)}) GROUP BY k.field, k.value "
                    "ORDER BY k.field, n DESC, k.value", wanted_facets).fetchall() if wanted_facets and total else []
                conn.execute("DELETE FROM temp.matched")
            except sqlite3.Error as e:
                raise IndexUnavailable(f"text index {self.database_path(version)} failed a search: {e}") from e
        hits = []
        for image_id, score, text in rows:
            doc = _unpack(text)
            hits.append(Hit(image_id, float(score), matched_fields(doc, tokens), doc))
        counts: dict[str, dict[str, int]] = {f: {} for f in wanted_facets}
        for name, value, n in facet_rows:
            if len(counts[name]) < FACET_SIZE:
                counts[name][value] = n
        return SearchResult(hits, int(total), counts, self.name, version)

    def retrieve(self, plan, filters: Filters | None = None, facets: Sequence[str] | None = None, depth: int = 1000,
                 version: str | None = None, facet_size: int = FACET_SIZE, state: str | None = None):
        """Execute a plan on the in-memory snapshot of the version (indexer.query.memory), built on first use.

        `state`: the `state_token()` the caller just read (its answer cache's key): when the held snapshot is of
        exactly that state it ranks without reading the live version and the write counter again (a stat and a
        SQLite pragma, 2-3% of a new search); the answer is then the state's the caller's key names."""
        where = normalise_filters(filters)
        wanted_facets = check_facets(facets)
        index = None
        if state is not None and version is None:
            memory = self._memory
            held_version, _, stamp = state.rpartition("@")
            if memory is not None and memory[0] == held_version and memory[1] == stamp:
                version, index = held_version, memory[2]
        if index is None:
            version = self._resolve(version)
            index = self.memory_index(version)
        out = index.rank(plan, where, wanted_facets, depth, facet_size)
        out.version = version
        return out

    def state_token(self, version: str | None = None) -> str | None:
        """The version (the live one when None) and its write counter: any write or switch changes it."""
        version = self._resolve(version)
        with self._lock:
            return f"{version}@{self._current_stamp(version)}"

    def memory_index(self, version: str | None = None):
        """The version's in-memory ranker (indexer.query.memory), rebuilt when the catalogue was written to.

        The ranker's arrays are kept beside the catalogue (SNAPSHOT_NAME) so that the next process
        loads them instead of decoding every document again; a snapshot of another state is ignored.
        """
        from indexer.query.memory import MemoryIndex
        from indexer.query.plan import SOURCES, RankPlan

        version = self._resolve(version)
        with self._lock:
            stamp = self._current_stamp(version)
            if self._memory is not None and self._memory[0] == version and self._memory[1] == stamp:
                return self._memory[2]
            snapshot = self._version_dir(version) / SNAPSHOT_NAME
            index = MemoryIndex.load(snapshot, stamp, documents=lambda: self._all_documents(version))
            if index is None:
                index = MemoryIndex.from_documents(self._all_documents(version))
                try:  # best effort: a read-only index folder still serves, only slower to start
                    index.save(snapshot, stamp, [RankPlan(source=source).text_fields for source in SOURCES])
                except OSError:
                    pass
            self._memory = (version, stamp, index)
            return index

    def _current_stamp(self, version: str) -> str:
        """`_stamp` of the version's catalogue, counted again only when SQLite says it may have changed: PRAGMA
        data_version moves when another connection (of any process) commits, the connection's total_changes when
        it writes itself. `_stamp` counts the catalogue's rows (its cost grows with the index; a search asks
        2-3 times), this check does not."""
        with self._lock:
            conn = self._connect(version)
            seen = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
            memo = self._stamps.get(version)
            if memo is not None and memo[0] is conn and memo[1] == seen:
                return memo[2]
            stamp = _stamp(conn)
            self._stamps[version] = (conn, seen, stamp)
            return stamp

    def _all_documents(self, version: str) -> list[dict]:
        with self._lock:
            try:
                return [_unpack(blob) for (blob,) in
                        self._connect(version).execute("SELECT document FROM images ORDER BY rowid")]
            except sqlite3.Error as e:
                raise IndexUnavailable(f"text index {self.database_path(version)} cannot be read: {e}") from e

    def get_many(self, image_ids: Sequence[str], version: str | None = None) -> dict[str, dict]:
        version = self._resolve(version)
        ids = list(dict.fromkeys(image_ids))
        memory = self._memory
        if memory is not None and memory[0] == version and memory[2].holds_documents:
            with self._lock:  # the in-memory ranker's documents, when it is current
                current = self._current_stamp(version) == memory[1]
            held = memory[2].documents(ids) if current else None
            if held is not None:
                return {i: dict(d) for i, d in held.items()}
        out: dict[str, dict] = {}
        with self._lock:
            conn = self._connect(version)
            # decoded documents of the current state, kept (bounded) so that a server whose ranker came from its
            # snapshot (no documents held) does not decode the same pages' documents on every request
            stamp = self._current_stamp(version)
            if self._doc_cache is None or self._doc_cache[:2] != (version, stamp):
                self._doc_cache = (version, stamp, OrderedDict())
            cache = self._doc_cache[2]
            missing = [i for i in ids if i not in cache]
            for start in range(0, len(missing), 500):
                chunk = missing[start:start + 500]
                for image_id, text in conn.execute(
                        f"SELECT image_id, document FROM images WHERE image_id IN ({_marks(chunk)})", chunk):
                    cache[image_id] = _unpack(text)
            for image_id in ids:
                doc = cache.get(image_id)
                if doc is not None:
                    cache.move_to_end(image_id)
                    out[image_id] = dict(doc)
            while len(cache) > DOCUMENT_CACHE:
                cache.popitem(last=False)
        return out

    def count(self, version: str | None = None) -> int:
        version = self._resolve(version)
        with self._lock:
            return int(self._connect(version).execute("SELECT count(*) FROM images").fetchone()[0])

    def size_bytes(self, version: str | None = None) -> int:
        version = self._resolve(version)
        with self._lock:
            self._connect(version).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in self._version_dir(version).iterdir() if p.is_file())

    def record_part(self, version: str, part: str, stats: Mapping) -> dict[str, dict]:
        version = self._resolve(version)
        with self._lock:
            conn = self._connect(version)
            conn.execute("INSERT OR REPLACE INTO build_parts (part, stats) VALUES (?, ?)",
                         (part, json.dumps(dict(stats), sort_keys=True)))
            return {p: json.loads(s) for p, s in conn.execute("SELECT part, stats FROM build_parts ORDER BY part")}


# --- SQL helpers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _writing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that also counts the write (see _stamp); rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute(_COUNT_WRITE)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _stamp(conn: sqlite3.Connection) -> str:
    """Which state the catalogue is in: its write counter and document count (changes with every write)."""
    writes, count = conn.execute("SELECT (SELECT value FROM meta WHERE key = 'writes'), "
                                 "(SELECT count(*) FROM images)").fetchone()
    return f"{writes or 0}:{count}"


def _marks(values: Sequence) -> str:
    return ", ".join("?" for _ in values)


def _pack(doc: Mapping) -> bytes:
    return zlib.compress(json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"), 6)


def _unpack(blob: bytes) -> dict:
    text = zlib.decompress(blob)
    try:
        return orjson.loads(text)   # 3x faster than json on a stored document
    except orjson.JSONDecodeError:  # what only the json module reads (NaN, Infinity)
        return json.loads(text)


def _keyword_rows(doc: Mapping, rowid: int) -> list[tuple[str, str, int]]:
    return [(name, value, rowid) for name in FILTER_FIELDS for value in keyword_values(doc, name)]


def _unindex(conn: sqlite3.Connection, rowid: int, old: Mapping) -> None:
    """Take a stored document out of the full-text and keyword tables (its row in `images` stays).

    The full-text table is contentless (the text lives once, in the stored document), so FTS5's
    'delete' command is given exactly the values that were indexed, read back from that document.
    """
    conn.execute(f"INSERT INTO images_fts (images_fts, rowid, {', '.join(_COLUMNS)}) "
                 f"VALUES ('delete', ?, {_marks(_COLUMNS)})", (rowid, *(old.get(c) or "" for c in _COLUMNS)))
    conn.executemany("DELETE FROM keywords WHERE field = ? AND value = ? AND doc = ?", _keyword_rows(old, rowid))


def _remove(conn: sqlite3.Connection, image_id: str) -> bool:
    row = conn.execute("SELECT rowid, document FROM images WHERE image_id = ?", (image_id,)).fetchone()
    if row is None:
        return False
    _unindex(conn, row[0], _unpack(row[1]))
    conn.execute("DELETE FROM images WHERE rowid = ?", (row[0],))
    return True


def _upsert(conn: sqlite3.Connection, doc: Mapping) -> None:
    """Write one document into its catalogue row, its full-text row and its keyword rows."""
    image_id = doc["image_id"]
    models = doc.get("model_version")
    columns = (doc.get("report_id"), doc.get("view"), doc.get("split"), int(bool(doc.get("synthetic"))),
               doc.get("content_hash"), ",".join(models) if isinstance(models, list) else models,
               _pack(doc))
    row = conn.execute("SELECT rowid, document FROM images WHERE image_id = ?", (image_id,)).fetchone()
    if row is None:
        rowid = conn.execute(
            "INSERT INTO images (image_id, report_id, view, split, synthetic, content_hash, model_version, document) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (image_id, *columns)).lastrowid
    else:
        rowid = row[0]
        _unindex(conn, rowid, _unpack(row[1]))
        conn.execute("UPDATE images SET report_id = ?, view = ?, split = ?, synthetic = ?, content_hash = ?, "
                     "model_version = ?, document = ? WHERE rowid = ?", (*columns, rowid))
    conn.execute(f"INSERT INTO images_fts (rowid, {', '.join(_COLUMNS)}) VALUES (?, {_marks(_COLUMNS)})",
                 (rowid, *(doc.get(c) or "" for c in _COLUMNS)))
    conn.executemany("INSERT OR IGNORE INTO keywords (field, value, doc) VALUES (?, ?, ?)", _keyword_rows(doc, rowid))


