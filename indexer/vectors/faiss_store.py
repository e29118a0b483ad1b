"""FAISS vector store for CNN embeddings and joint context vectors (the store class).

A :class:`VectorStore` keeps one kind of vector (``cnn_embedding``, ``context_vector``, ``findings``) for a set
of images, keyed by string ``image_id``. Vectors are L2-normalised on the way in, so the inner
product FAISS ranks by is the cosine similarity.

Index types (``VectorStoreConfig.index_type``):

- ``flat``     exact ``IndexFlatIP`` behind ``IndexIDMap2``; the default while the store is small.
- ``ivf_flat`` ``IndexIVFFlat``: k-means lists, full vectors; ``nprobe`` lists are scanned per query.
- ``hnsw``     ``IndexHNSWFlat`` behind ``IndexIDMap2``: graph search. Only by explicit config; it
               cannot remove vectors in place, so a removal or an update rebuilds the graph.
- ``ivf_pq``   ``IndexIVFPQ``: product-quantised codes (``pq_m`` bytes per vector): for collections
               too large for full vectors in memory; approximate scores.
- ``auto``     ``flat`` below ``exact_max`` vectors, then ``ivf_flat`` while the raw vectors fit in
               ``ivf_flat_max_gib``, ``ivf_pq`` above (PQ loses recall: measured recall@10 of 0.45-0.6
               at 64 bytes/vector, so it is the choice only when full vectors do not fit).
               The store switches type (retraining from its own vectors) when an ``add`` crosses a
               threshold; it never switches back down on removals.

IVF types need training data: an IVF store stays exact (``flat``) until it holds
``min_train_vectors`` (1,000 for IVF-Flat, 39 per PQ centroid for IVF-PQ: 9,984 at 8 bits), where
exact search is both better and cheap.

Ids: each image id gets an int64 label (a counter that never reuses a label); FAISS holds the
labels (``IndexIDMap2`` for flat/HNSW, the IVF's own ids plus a hash-table direct map for IVF) and
a side table maps them back. Removal is id-mapped (``remove_ids``) for flat and IVF, a rebuild for
HNSW, so no stale id can be returned by a search.

Where things are: faiss_config.py (VectorStoreConfig, index type and parameter choice, CPU/GPU),
faiss_files.py (the on-disk format: meta.json and generations of files), this module (the store).
Only these three modules touch FAISS.

On disk a store is a directory (faiss_files.py); ``save`` writes a new generation beside the old
one and commits it by atomically replacing ``meta.json`` (write aside, fsync, rename), then
deletes the old generation: a reader always sees one complete generation, and a crash mid-save
leaves the previous one live. ``load`` memory-maps
the index (``faiss.IO_FLAG_MMAP_IFC``) where the index type allows; a memory-mapped store is read
on demand from the page cache and is copied into memory before its first change.

GPU: when the installed faiss has GPU support (the optional ``faiss-gpu-cu12`` wheel instead of
``faiss-cpu``) and ``faiss.get_num_gpus() > 0``, searches run on a GPU copy of the index (flat and
IVF types); the CPU index stays the one that is changed and saved. Everything else is one code path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import (
    DimensionMismatch,
    InvalidVectorConfig,
    InvalidVectors,
    ModelVersionMismatch,
    UnknownImageId,
    VectorStoreCorrupt,
)
from indexer.vectors.base import (
    AddResult,
    DocumentLookup,
    Neighbours,
    VectorFilters,
    check_image_ids,
    check_k,
    check_kind,
    post_filter,
    unit_vectors,
)
from indexer.vectors.faiss_config import (
    GPU_INDEX_TYPES,
    INDEX_TYPES,
    RANK,
    VectorStoreConfig,
    auto_nlist,
    auto_pq_m,
    choose_device,
    gpu_support,
    index_to_gpu,
    min_train_vectors,
    target_index_type,
)
from indexer.vectors.faiss_files import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    current_generation,
    read_index,
    read_meta,
    write_generation,
)
from indexer.vectors.faiss_import import faiss

log = logging.getLogger(__name__)

__all__ = ["INDEX_TYPES", "VectorStore", "VectorStoreConfig", "choose_device", "gpu_support", "min_train_vectors",
           "target_index_type"]

_CHUNK = 65_536  # vectors per add/reconstruct batch during rebuilds


class VectorStore:
    """Vectors of one kind for a set of images, searchable by inner product (cosine similarity).

    Create an empty store with ``VectorStore(dimension, ...)`` or a full one with
    ``VectorStore.build(image_ids, vectors, ...)``; open a saved one with ``VectorStore.load(path)``.
    Methods are thread-safe (one lock per store).
    """

    def __init__(
        self,
        dimension: int,
        *,
        kind: str = "context_vector",
        model_version: str = "unknown",
        config: VectorStoreConfig | None = None,
    ) -> None:
        if not isinstance(dimension, (int, np.integer)) or dimension < 1:
            raise InvalidVectorConfig(f"dimension={dimension!r} must be a positive integer (1024 for the paper's CNN)")
        check_kind(kind)
        if not isinstance(model_version, str) or not model_version:
            raise InvalidVectorConfig(f"model_version={model_version!r} must be a non-empty string")
        self._dimension = int(dimension)
        self._kind = kind
        self._model_version = model_version
        self._config = config or VectorStoreConfig()
        self._lock = threading.RLock()
        self._labels: dict[str, int] = {}  # image_id -> int64 label in FAISS
        self._image_ids: dict[int, str] = {}  # label -> image_id
        self._next_label = 0
        self._params: dict[str, Any] = {}
        self._index_type = "flat"
        self._index: Any = None
        self._mmapped = False
        self._source_file: Path | None = None
        self._path: Path | None = None
        self._generation = 0
        self._gpu_index: Any = None
        self._device = choose_device(self._config.device, *gpu_support())
        self._documents: DocumentLookup | None = None
        self._reset_index(target_index_type(self._config, 0, self._dimension), 0, None)

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        image_ids: Sequence[str],
        vectors: np.ndarray,
        *,
        kind: str = "context_vector",
        model_version: str = "unknown",
        config: VectorStoreConfig | None = None,
        batch_size: int = _CHUNK,
        progress: bool = False,
    ) -> VectorStore:
        """Build a store from all vectors at once: the index type is chosen (and trained) for N up front.

        Args:
            image_ids: N distinct image ids.
            vectors: (N, D) array (a np.memmap works); normalised chunk by chunk, never copied whole.
            batch_size: vectors per FAISS add.
            progress: show a tqdm bar.
        """
        if getattr(vectors, "ndim", None) != 2:
            raise InvalidVectors(f"vectors must be a 2-D (N, D) array, got shape {getattr(vectors, 'shape', None)}")
        store = cls(int(vectors.shape[1]), kind=kind, model_version=model_version, config=config)
        ids = store._check_ids(image_ids, len(vectors))
        n = len(ids)
        index_type = target_index_type(store._config, n, store._dimension)
        rng = np.random.default_rng(store._config.seed)

        def sample(m: int) -> np.ndarray:
            rows = np.sort(rng.choice(n, size=min(m, n), replace=False))
            return store._prepare(vectors[rows], "training vectors")

        with store._lock:
            store._reset_index(index_type, n, sample)
            bar = _progress(n, f"vectors -> {index_type}", progress)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                store._add_locked(ids[start:stop], vectors[start:stop], allow_upgrade=False)
                bar.update(stop - start)
            bar.close()
        return store

    @staticmethod
    def exists(path: str | os.PathLike) -> bool:
        """Whether ``path`` holds a saved store (its meta.json)."""
        return (Path(path) / META_FILE).is_file()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        mmap: bool = True,
        expect_dimension: int | None = None,
        expect_kind: str | None = None,
        expect_model_version: str | None = None,
        device: str | None = None,
    ) -> VectorStore:
        """Open a saved store, memory-mapped when ``mmap`` and the index type allow it.

        Raises:
            VectorStoreNotFound: no meta.json under ``path``.
            VectorStoreCorrupt: files missing, unreadable, or disagreeing on count/dimension.
            DimensionMismatch / ModelVersionMismatch / InvalidVectorConfig: an ``expect_*`` differs.
        """
        root = Path(path)
        for attempt in range(2):  # a concurrent save may delete the generation between meta and index
            meta = read_meta(root)
            try:
                return cls._from_files(root, meta, mmap, expect_dimension, expect_kind, expect_model_version, device)
            except FileNotFoundError as err:
                if attempt == 1:
                    raise VectorStoreCorrupt(
                        f"{root}: files named in {META_FILE} are missing: {meta.get('files')}") from err
        raise AssertionError("unreachable")

    @classmethod
    def _from_files(cls, root, meta, mmap, expect_dimension, expect_kind, expect_model_version, device):
        try:
            config = VectorStoreConfig.from_dict(dict(meta["config"]))
            dimension, kind, model_version = int(meta["dimension"]), meta["kind"], meta["model_version"]
            index_type, files = meta["index_type"], meta["files"]
        except (KeyError, TypeError, ValueError) as e:
            raise VectorStoreCorrupt(f"{root / META_FILE} lacks or garbles a field ({e}); rebuild the store") from e
        if device is not None:
            config = VectorStoreConfig.from_dict({**config.to_dict(), "device": device})
        if expect_dimension is not None and expect_dimension != dimension:
            raise DimensionMismatch(
                f"store at {root} holds {dimension}-d vectors, but {expect_dimension}-d were expected"
            )
        if expect_kind is not None and expect_kind != kind:
            raise InvalidVectorConfig(f"store at {root} holds {kind!r} vectors, but {expect_kind!r} were expected")
        if expect_model_version is not None and expect_model_version != model_version:
            raise ModelVersionMismatch(
                f"store at {root} was built by model version {model_version!r}, but {expect_model_version!r} "
                "was expected; rebuild it with the current model (cxrsearch reindex)"
            )
        index_file, ids_file = root / files["index"], root / files["ids"]
        with open(ids_file, encoding="utf-8") as f:  # FileNotFoundError -> retried by load()
            table = json.load(f)
        index, mmapped = read_index(index_file, index_type, mmap)

        labels, image_ids = table.get("labels", []), table.get("image_ids", [])
        problems = []
        if len(labels) != len(image_ids):
            problems.append(f"{len(labels)} labels but {len(image_ids)} image ids")
        if len(set(labels)) != len(labels) or len(set(image_ids)) != len(image_ids):
            problems.append("the id table repeats a label or an image id")
        if index.ntotal != len(labels) or meta.get("count") != len(labels):
            problems.append(f"index holds {index.ntotal}, id table {len(labels)}, meta.json count {meta.get('count')}")
        if index.d != dimension:
            problems.append(f"index dimension {index.d} but meta.json dimension {dimension}")
        if problems:
            raise VectorStoreCorrupt(f"store at {root} is inconsistent: {'; '.join(problems)}; rebuild it")

        store = cls(dimension, kind=kind, model_version=model_version, config=config)
        store._index, store._index_type = index, index_type
        store._params = dict(meta.get("build_params", {}))
        store._labels = dict(zip(image_ids, (int(x) for x in labels)))
        store._image_ids = {label: image_id for image_id, label in store._labels.items()}
        store._next_label = int(meta.get("next_label", max(labels, default=-1) + 1))
        store._mmapped, store._source_file = mmapped, index_file
        store._path, store._generation = root, int(meta.get("generation", 0))
        store._apply_search_params()
        return store

    # -- properties --------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        """Vector dimension D."""
        return self._dimension

    @property
    def kind(self) -> str:
        """``cnn_embedding``, ``context_vector`` or ``findings``."""
        return self._kind

    @property
    def model_version(self) -> str:
        """Version of the model that produced the vectors."""
        return self._model_version

    @property
    def config(self) -> VectorStoreConfig:
        """The store's config."""
        return self._config

    @property
    def index_type(self) -> str:
        """The index type in use now (``flat``, ``ivf_flat``, ``hnsw`` or ``ivf_pq``)."""
        return self._index_type

    @property
    def device(self) -> str:
        """Where searches run: ``cpu`` or ``gpu``."""
        return self._device

    @property
    def mmapped(self) -> bool:
        """Whether the index is memory-mapped from its file (copied into memory on the first change)."""
        return self._mmapped

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._labels

    def image_ids(self) -> list[str]:
        """All stored image ids, in insertion (label) order."""
        with self._lock:
            return [self._image_ids[label] for label in sorted(self._image_ids)]

    def is_stale(self) -> bool:
        """Whether the directory this store came from now holds a newer saved generation (reload to see it)."""
        if self._path is None:
            return False
        return current_generation(self._path) != self._generation

    def metadata(self) -> dict[str, Any]:
        """The metadata saved in meta.json (plus the runtime ``device`` and ``mmapped``)."""
        with self._lock:
            return {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": self._kind,
                "dimension": self._dimension,
                "model_version": self._model_version,
                "count": len(self._labels),
                "index_type": self._index_type,
                "metric": "inner_product",
                "normalized": True,
                "build_params": dict(self._params),
                "config": self._config.to_dict(),
                "next_label": self._next_label,
                "generation": self._generation,
                "faiss_version": faiss.__version__,
                "device": self._device,
                "mmapped": self._mmapped,
            }

    # -- changes -----------------------------------------------------------------------------------

    def add(self, image_ids: Sequence[str], vectors: np.ndarray) -> AddResult:
        """Add or replace the vectors of ``image_ids``; an id already stored gets its new vector.

        Args:
            image_ids: N distinct image ids.
            vectors: (N, D) or (D,) for one id; any float dtype; normalised here.
        Returns:
            counts of added and updated (replaced) image ids.
        """
        with self._lock:
            return self._add_locked(image_ids, vectors, allow_upgrade=True)

    def remove(self, image_ids: Iterable[str]) -> int:
        """Remove the vectors of ``image_ids``; ids not stored are ignored. Returns how many were removed."""
        with self._lock:
            wanted = list(dict.fromkeys(image_ids))
            labels = [self._labels[i] for i in wanted if i in self._labels]
            if not labels:
                return 0
            self._ensure_writable()
            self._remove_labels(labels)
            return len(labels)

    def rebuild(self, index_type: str | None = None) -> None:
        """Retrain and rebuild the index from the stored vectors (e.g. after growth, or to switch type).

        Args:
            index_type: a concrete type to switch to; None = what the config gives for the current size.
        Note: rebuilding from ``ivf_pq`` starts from PQ-decoded (approximate) vectors.
        """
        if index_type is not None and index_type not in RANK:
            raise InvalidVectorConfig(f"index_type {index_type!r} cannot be built; valid: {', '.join(RANK)}")
        with self._lock:
            self._ensure_writable()
            self._rebuild(index_type or target_index_type(self._config, len(self._labels), self._dimension))

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall trade-off of later searches (IVF ``nprobe``, HNSW ``ef_search``)."""
        with self._lock:
            for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
                if value is not None:
                    if not isinstance(value, int) or value < 1:
                        raise InvalidVectorConfig(f"{name}={value!r} must be a positive integer")
                    self._params[name] = value
            self._apply_search_params()
            self._gpu_index = None

    # -- queries -----------------------------------------------------------------------------------

    def attach_documents(self, documents: DocumentLookup | None) -> None:
        """Give the store a lookup of the text documents, so that ``search(..., filters=...)`` works.

        ``indexer.vectors.live.open_vectors`` attaches the text index version the store belongs to.
        """
        self._documents = documents

    def search(self, query_vectors: np.ndarray, k: int = 10, *, filters: VectorFilters | None = None,
               _exclude: Sequence[str | None] | None = None) -> list[Neighbours]:
        """The ``k`` nearest stored images of each query, best first.

        Args:
            query_vectors: (Q, D), or (D,) for one query; normalised here.
            k: neighbours per query (fewer when the store holds fewer).
            filters: only images whose text document matches (``{"view": ["frontal"]}``, the text
                backends' form). FAISS holds no document fields, so this *post-filters*: it searches
                4k, 16k, ... candidates until k pass or the whole store was searched, looking the
                candidates' documents up in the attached text index (``attach_documents``).
        Returns:
            one ``Neighbours`` per query row.
        """
        k = check_k(k)
        queries = self._prepare(query_vectors, "query vectors")  # (Q, D) unit rows
        if filters:
            from indexer.text.base import normalise_filters

            where = normalise_filters(filters)
            if self._documents is None:
                raise InvalidVectorConfig(
                    f"filters {dict(where)} need the text documents, and this {self._kind} store has none attached: "
                    "open it with indexer.vectors.live.open_vectors, or call attach_documents()")
            return post_filter(self._search_unit, queries, k, len(self), where, self._documents, _exclude)
        return self._search_unit(queries, k)

    def _search_unit(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        """Unfiltered search of (Q, D) unit rows."""
        with self._lock:
            if not self._labels:
                return [Neighbours((), ()) for _ in range(len(queries))]
            k_eff = int(min(k, len(self._labels)))
            scores, labels = self._searcher(k_eff).search(queries, k_eff)  # (Q, k), (Q, k)
            results = []
            for row_scores, row_labels in zip(scores, labels):
                keep = row_labels >= 0  # FAISS pads with -1 when a probe finds fewer than k
                results.append(
                    Neighbours(
                        tuple(self._image_ids[int(label)] for label in row_labels[keep]),
                        tuple(float(s) for s in row_scores[keep]),
                    )
                )
        return results

    def similar(self, image_id: str, k: int = 10, *, include_self: bool = False,
                filters: VectorFilters | None = None) -> Neighbours:
        """The images nearest to a stored image (its own vector as the query), optionally filtered."""
        query = self.get_vectors([image_id])
        if filters:
            return self.search(query, k, filters=filters, _exclude=[None if include_self else image_id])[0]
        hits = self.search(query, k + (0 if include_self else 1))[0]
        pairs = [(i, s) for i, s in hits.pairs() if include_self or i != image_id][:k]
        return Neighbours(tuple(i for i, _ in pairs), tuple(s for _, s in pairs))

    def get_vectors(self, image_ids: Sequence[str]) -> np.ndarray:
        """The stored (unit) vectors of ``image_ids`` as (N, D) float32 (PQ-decoded for ivf_pq)."""
        with self._lock:
            missing = [i for i in image_ids if i not in self._labels]
            if missing:
                raise UnknownImageId(
                    f"image ids not in the {self._kind} store: {missing[:5]}"
                    f"{' ...' if len(missing) > 5 else ''} ({len(self._labels)} images stored)"
                )
            labels = np.array([self._labels[i] for i in image_ids], dtype=np.int64)
            if len(labels) == 0:
                return np.zeros((0, self._dimension), dtype=np.float32)
            return self._index.reconstruct_batch(labels)

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the store under directory ``path`` (default: where it was loaded or last saved).

        The new generation is written beside the old one and committed by an atomic rename of
        meta.json; the old generation is deleted after the commit.
        """
        with self._lock:
            if path is None and self._path is None:
                raise InvalidVectorConfig("save() needs a path: this store was never loaded or saved")
            root = Path(path) if path is not None else self._path
            labels = sorted(self._image_ids)
            table = {"labels": labels, "image_ids": [self._image_ids[x] for x in labels]}
            meta = self.metadata()
            for runtime in ("device", "mmapped"):
                meta.pop(runtime)
            generation, files = write_generation(root, self._index, table, meta)
            self._path, self._generation = root, generation
            self._source_file = root / files["index"]  # same bytes as the index in use, mapped or not
            return root

    # -- internals ---------------------------------------------------------------------------------

    def _check_ids(self, image_ids: Sequence[str], n_vectors: int) -> list[str]:
        return check_image_ids(image_ids, n_vectors)

    def _prepare(self, vectors: Any, what: str) -> np.ndarray:
        """Validate and L2-normalise: (N, D) or (D,) -> (N, D) float32 unit rows."""
        owner = f"this {self._kind} store (model version {self._model_version!r})"
        return unit_vectors(vectors, self._dimension, what, owner)

    def _add_locked(self, image_ids: Sequence[str], vectors: Any, allow_upgrade: bool) -> AddResult:
        x = self._prepare(vectors, "vectors")
        ids = self._check_ids(image_ids, len(x))
        if not ids:
            return AddResult(0, 0)
        self._ensure_writable()
        existing = [self._labels[i] for i in ids if i in self._labels]
        if existing:
            self._remove_labels(existing, forget=False)
        labels = np.empty(len(ids), dtype=np.int64)
        next_label = self._next_label
        for row, image_id in enumerate(ids):
            label = self._labels.get(image_id)
            if label is None:
                label, next_label = next_label, next_label + 1
            labels[row] = label
        self._gpu_index = None
        try:
            self._index.add_with_ids(x, labels)
        except RuntimeError as e:  # keep the id table equal to what FAISS holds
            for image_id in ids:
                if image_id in self._labels:
                    del self._image_ids[self._labels.pop(image_id)]
            raise VectorStoreCorrupt(
                f"FAISS refused to add {len(ids)} vectors ({e}); their image ids were dropped") from e
        for image_id, label in zip(ids, labels.tolist()):
            self._labels[image_id] = label
            self._image_ids[label] = image_id
        self._next_label = next_label
        if allow_upgrade:
            target = target_index_type(self._config, len(self._labels), self._dimension)
            if target != self._index_type and RANK[target] > RANK[self._index_type]:
                log.info("vector store: %s -> %s at %d vectors", self._index_type, target, len(self._labels))
                self._rebuild(target)
        return AddResult(added=len(ids) - len(existing), updated=len(existing))

    def _remove_labels(self, labels: list[int], forget: bool = True) -> None:
        """Remove labels from FAISS (a rebuild for HNSW); ``forget`` also drops them from the id table."""
        if self._index_type == "hnsw":
            self._rebuild("hnsw", exclude=set(labels))
        else:
            removed = self._index.remove_ids(np.array(labels, dtype=np.int64))
            if removed != len(labels):
                raise VectorStoreCorrupt(
                    f"FAISS removed {removed} of {len(labels)} vectors; the id table and the index disagree"
                )
        if forget:
            for label in labels:
                del self._labels[self._image_ids.pop(label)]
        self._gpu_index = None

    def _ensure_writable(self) -> None:
        """Copy a memory-mapped index into memory (FAISS aborts the process if a mapped index grows)."""
        if not self._mmapped:
            return
        if self._source_file is not None and self._source_file.exists():
            self._index = faiss.read_index(str(self._source_file))
        else:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
        self._mmapped = False
        self._apply_search_params()

    def _rebuild(self, index_type: str, exclude: set[int] | None = None) -> None:
        """Rebuild the index as ``index_type`` from the stored vectors, leaving out ``exclude`` labels."""
        old, exclude = self._index, exclude or set()
        labels = np.array(sorted(x for x in self._image_ids if x not in exclude), dtype=np.int64)
        rng = np.random.default_rng(self._config.seed)

        def sample(m: int) -> np.ndarray:
            picked = np.sort(rng.choice(labels, size=min(m, len(labels)), replace=False))
            return old.reconstruct_batch(picked)

        self._reset_index(index_type, len(labels), sample)
        for start in range(0, len(labels), _CHUNK):
            chunk = labels[start : start + _CHUNK]
            self._index.add_with_ids(old.reconstruct_batch(chunk), chunk)
        self._gpu_index = None

    def _reset_index(self, index_type: str, n: int, sample: Callable[[int], np.ndarray] | None) -> None:
        """Replace the index with an empty (trained) one of ``index_type`` sized for ``n`` vectors."""
        cfg, d = self._config, self._dimension
        params: dict[str, Any] = {}
        if index_type == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        elif index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = cfg.ef_construction
            index = faiss.IndexIDMap2(inner)
            params = {"hnsw_m": cfg.hnsw_m, "ef_construction": cfg.ef_construction, "ef_search": cfg.ef_search}
        elif index_type in ("ivf_flat", "ivf_pq"):
            if sample is None:
                raise InvalidVectorConfig(f"index type {index_type!r} needs training vectors")
            train = sample(cfg.train_size)  # (T, D) unit rows
            nlist = min(cfg.nlist or auto_nlist(n, len(train)), len(train))
            quantizer = faiss.IndexFlatIP(d)
            if index_type == "ivf_flat":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                m = cfg.pq_m or auto_pq_m(d)
                if d % m:
                    raise InvalidVectorConfig(f"pq_m={m} must divide the dimension {d}")
                index = faiss.IndexIVFPQ(quantizer, d, nlist, m, cfg.pq_nbits, faiss.METRIC_INNER_PRODUCT)
                params.update(pq_m=m, pq_nbits=cfg.pq_nbits)
            index.cp.seed = cfg.seed  # k-means seed (the python wrapper keeps `quantizer` alive)
            if index_type == "ivf_pq":
                index.pq.cp.seed = cfg.seed
            t0 = time.perf_counter()
            index.train(train)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct/remove by label
            params.update(
                nlist=nlist,
                nprobe=min(cfg.nprobe or max(16, nlist // 16), nlist),
                trained_on=len(train),
                train_seconds=round(time.perf_counter() - t0, 2),
            )
        else:
            raise InvalidVectorConfig(f"index_type {index_type!r} cannot be built; valid: {', '.join(RANK)}")
        params["built_for"] = n
        self._index, self._index_type, self._params = index, index_type, params
        self._mmapped, self._source_file, self._gpu_index = False, None, None
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        if self._index_type in ("ivf_flat", "ivf_pq"):
            faiss.extract_index_ivf(self._index).nprobe = int(self._params.get("nprobe", 8))
        elif self._index_type == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = int(self._params.get("ef_search", 64))

    def _searcher(self, k: int) -> Any:
        """The index searches run on: a GPU copy when the device is a GPU, else the CPU index."""
        if self._index_type == "hnsw":
            hnsw = faiss.downcast_index(self._index.index).hnsw
            hnsw.efSearch = max(int(self._params.get("ef_search", 64)), k)  # the beam must hold k results
            return self._index
        if self._device != "gpu" or self._index_type not in GPU_INDEX_TYPES:
            return self._index
        if self._gpu_index is None:
            try:
                self._gpu_index = index_to_gpu(self._index)
            except Exception as e:  # an index the GPU cloner refuses: keep serving from the CPU
                log.warning("vector store: GPU copy of %s failed (%s); searching on CPU", self._index_type, e)
                self._device = "cpu"
                return self._index
        return self._gpu_index


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="vec", disable=not enabled)
