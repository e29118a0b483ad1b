"""The on-disk format of a FAISS vector store: meta.json, generations of index and id files, atomic commits.

A store is a directory::

    meta.json                 dimension, kind, model version, count, index type, build params, files
    index.000003.faiss        faiss.write_index of the index
    ids.000003.json           {"labels": [...], "image_ids": [...]}

`write_generation` writes a new generation beside the old one and commits it by atomically
replacing ``meta.json`` (write aside, fsync, rename), then deletes the old generation: a reader
always sees one complete generation, and a crash mid-save leaves the previous one live.
`read_index` memory-maps the index (``faiss.IO_FLAG_MMAP_IFC``) where the index type allows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from indexer.errors import VectorStoreCorrupt, VectorStoreNotFound
from indexer.files import atomic_path, fsync_dir
from indexer.vectors.faiss_import import faiss

log = logging.getLogger("indexer.vectors.faiss_store")

FORMAT = "cxrsearch-faiss-vectors"
FORMAT_VERSION = 1
META_FILE = "meta.json"


def read_meta(root: Path) -> dict[str, Any]:
    meta_file = root / META_FILE
    if not meta_file.is_file():
        raise VectorStoreNotFound(f"no vector store at {root} ({META_FILE} missing); "
                                  "build one with `cxrsearch reindex`")
    try:
        meta = json.loads(meta_file.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise VectorStoreCorrupt(f"{meta_file} is not readable JSON ({e}); rebuild the store") from e
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise VectorStoreCorrupt(
            f"{meta_file} has format {meta.get('format')!r} version {meta.get('format_version')!r}; "
            f"this code reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    return meta


def read_index(index_file: Path, index_type: str, mmap: bool) -> tuple[Any, bool]:
    """Read a FAISS index file, memory-mapped when possible. Returns (index, whether mapped)."""
    if not index_file.is_file():
        raise FileNotFoundError(str(index_file))
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mmap else 0  # faiss >= 1.10 maps flat/IVF/HNSW data
    if flags:
        try:
            return faiss.read_index(str(index_file), flags), True
        except RuntimeError as e:
            log.warning("vector store: cannot memory-map %s (%s); reading it into memory", index_file.name, e)
    try:
        return faiss.read_index(str(index_file)), False
    except RuntimeError as e:
        raise VectorStoreCorrupt(
            f"{index_file} is not a readable FAISS {index_type} index ({e}); rebuild the store") from e


def current_generation(root: Path) -> int:
    try:
        return int(read_meta(root).get("generation", 0))
    except (VectorStoreNotFound, VectorStoreCorrupt):
        return 0


def write_atomic(target: Path, write: Callable[[Path], Any]) -> None:
    """Write ``target`` through ``write(tmp_path)`` and indexer.files.atomic_path (fsync, rename, fsync dir)."""
    with atomic_path(target) as tmp:
        write(tmp)


def delete_other_generations(root: Path, keep: dict[str, str]) -> None:
    for pattern in ("index.*.faiss", "ids.*.json"):
        for old in root.glob(pattern):
            if old.name not in keep.values():
                old.unlink(missing_ok=True)


def write_generation(root: Path, index: Any, table: dict[str, list],
                     meta: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """Save index + id table as the next generation under ``root`` and commit it; returns (generation, files).

    One writer at a time per directory (a file lock on ``root/.lock``, filelock: cross-platform).
    """
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / ".lock", thread_local=False):
        generation = current_generation(root) + 1
        files = {"index": f"index.{generation:06d}.faiss", "ids": f"ids.{generation:06d}.json"}
        write_atomic(root / files["index"], lambda tmp: faiss.write_index(index, str(tmp)))
        write_atomic(root / files["ids"], lambda tmp: tmp.write_text(json.dumps(table), "utf-8"))
        meta = {**meta, "generation": generation, "files": files,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_atomic(root / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=2), "utf-8"))
        fsync_dir(root)
        delete_other_generations(root, files)
    return generation, files
