"""The reindex job's vector writers: FAISS (per-batch segments, one store per kind) or Elasticsearch kNN.

How vectors follow the text index through a build with FAISS (see job.py for the text side):

1. `begin`: the live version's stores (if any) are opened memory-mapped, to carry vectors over.
2. Per batch, after the text documents are written and *before* the batch's journal line:
   `write` saves the batch's vectors (fresh ones from the annotator, carried ones copied from the
   live store with `VectorStore.get_vectors`) as one segment file
   `<index_dir>/builds/<version>/vectors-IofN/seg-<seq>-<token>.npz` (write aside, fsync, rename),
   and the journal line names it. A journaled batch therefore always has its vectors on disk; a
   batch killed before its journal line is redone and writes a new segment; segments no journal
   line names are ignored. So a killed job resumes with no vector lost and none duplicated.
3. `publish`, once every part is in and the text build is complete, reads the segments the
   journals name (last line wins per image), builds one `VectorStore` per kind (the index type
   chosen for the final size), checks that its image ids are *exactly* the text version's
   documents (same count, every id present) and saves the stores under
   `<index_dir>/vectors/<space>/<version>/` (indexer.vectors.live).
4. The job then switches the text index: readers resolve vectors through the text index's live
   version, so text and vectors become live in that one atomic step. Vectors are never visible
   before their text: they sit under a version no reader resolves until the switch.
5. After the switch the job deletes the vectors of versions the text index no longer has (the
   previous live version unless kept, abandoned builds), also after a text-only build.

Image ids that were removed from the input are not in the new text version, so they get no vector.
Sharded jobs (`--shard I/N`) write one segment folder per part; the worker that switches reads
them all, so with FAISS vectors the N workers need one shared `--index-dir` (as they share a build).

With Elasticsearch (`EsVectorWriter`, `--vectors es`), each batch's vectors are written straight
into the build's kNN indices `<alias>-knn-<kind>-v<version>` (by image id, so a redone batch
overwrites, never duplicates), before the batch's journal line, with the image's filter fields;
carried vectors are copied from the live version's kNN indices. `publish` refreshes and merges
them and checks they hold exactly the text version's image ids. Nothing is read from the local
journals, so the N workers of a sharded job need no shared disk: the cluster is the shared state.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer.errors import VectorStoreError, VectorStoreNotFound
from indexer.files import atomic_path
from indexer.text.base import TextBackend
from indexer.vectors.base import VECTOR_KINDS
from indexer.vectors.faiss_store import VectorStore, VectorStoreConfig
from indexer.vectors.live import es_vector_index, remove_version, version_dir
from pipelines.annotator import AnnotatedImage
from pipelines.reindex.config import ReindexConfig
from pipelines.reindex.stages import Journal, ReindexError, build_dir, journal_path, part_of

# AnnotatedImage attribute holding each stored kind
KIND_FIELDS = {"cnn_embedding": "embedding", "context_vector": "context_vector", "findings": "findings"}


class VectorBuildError(ReindexError):
    """The vectors of a build cannot be completed (missing part, inconsistent with the text index)."""


class VectorWriter(Protocol):
    """What the reindex job asks of its vector side (FaissVectorWriter and EsVectorWriter implement it)."""

    name: str  # 'faiss' or 'es'

    def begin(self, version: str, live: str | None) -> None:
        """Prepare to build `version`; `live` is the version to carry vectors over from."""

    def lacking(self, image_ids: Sequence[str]) -> set[str]:
        """Those of `image_ids` whose vectors cannot be carried over (they are annotated again)."""

    def problem(self, image: AnnotatedImage | None) -> str | None:
        """Why an annotated image's vectors cannot be stored (missing, NaN, zero, wrong size), or None."""

    def write(self, version: str, part: tuple[int, int], seq: int, fresh: Sequence[AnnotatedImage],
              carried: Sequence[str], documents: Mapping[str, Mapping]) -> str | None:
        """Save one batch's vectors durably; returns what the journal line records (a segment name).

        `documents` are the batch's text documents by image id (their filter fields go with the vectors).
        """

    def delete(self, version: str, image_ids: Sequence[str]) -> None:
        """Forget vectors a killed run wrote for images this run no longer indexes."""

    def publish(self, version: str, parts: Sequence[str]) -> dict[str, int]:
        """Complete the version's vectors once every part ('I/N') is in; returns {kind: count}."""

    def location(self, version: str) -> str:
        """Where the version's vectors are, for the summary."""

    def discard(self, version: str) -> None:
        """Delete the vectors of a build that will not go live."""


def open_vector_writer(config: ReindexConfig, backend: TextBackend, model_version: str) -> VectorWriter:
    """The writer of `config.vector_backend` ('faiss' or 'es') for a job writing into `backend`."""
    if config.vector_backend == "es":
        return EsVectorWriter(backend, model_version)
    return FaissVectorWriter(config.index_dir, backend, model_version, config.vector_config,
                             progress=config.progress_bar)


def segment_dir(index_dir: str | os.PathLike, version: str, part: tuple[int, int]) -> Path:
    """<index_dir>/builds/<version>/vectors-IofN: the segments one part of a build wrote."""
    i, n = part
    return build_dir(index_dir, version) / f"vectors-{i}of{n}"


def vector_problem(image: AnnotatedImage | None, dims: dict[str, int]) -> str | None:
    """Why an annotated image's vectors cannot be stored, or None; `dims` learns each kind's dimension."""
    if image is None:
        return "no annotator output, so no vectors"
    for kind, name in KIND_FIELDS.items():
        value = getattr(image, name)
        if value is None:
            return f"the model gave no {kind}"
        x = np.asarray(value, dtype=np.float32).reshape(-1)  # (D,)
        if x.size == 0 or not np.isfinite(x).all() or not np.linalg.norm(x) > 1e-12:
            return f"unusable {kind} (empty, NaN, infinite or all zeros)"
        expected = dims.setdefault(kind, int(x.size))
        if x.size != expected:
            return f"{kind} has {x.size} values, the others {expected}"
    return None


def batch_arrays(fresh: Sequence[AnnotatedImage], carried: Sequence[str],
                 live: Mapping[str, object]) -> tuple[list[str], dict[str, np.ndarray]]:
    """(image ids, {kind: (N, D) rows}) of one batch: fresh vectors first, then those carried from `live`."""
    ids = [a.image_id for a in fresh] + list(carried)
    arrays: dict[str, np.ndarray] = {}
    for kind, name in KIND_FIELDS.items():
        rows = [np.asarray(getattr(a, name), dtype=np.float32).reshape(-1) for a in fresh]  # N_fresh x (D,)
        if carried:
            rows += list(live[kind].get_vectors(list(carried)))  # (N_carried, D) unit rows
        arrays[kind] = np.stack(rows)  # (N, D)
    return ids, arrays


def check_against_text(backend: TextBackend, version: str, ids: Sequence[str]) -> None:
    """The vectors must cover exactly the text version's image ids: same count, every id present."""
    documents = backend.count(version)
    present = 0
    for start in range(0, len(ids), 1000):
        present += len(backend.get_many(list(ids[start:start + 1000]), version=version))
    if documents != len(ids) or present != len(ids):
        raise VectorBuildError(
            f"build {version}: the text index holds {documents} documents but the vectors cover {len(ids)} "
            f"images ({len(ids) - present} of them without a document); the live index is untouched; "
            "rerun with --fresh")


class FaissVectorWriter:
    """Writes every kind of vector (CNN embeddings, context vectors, findings) of a build into FAISS stores.

    Args:
        index_dir: the index home; segments go under `builds/`, stores under `vectors/`.
        backend: the text backend being built (its live version and versions decide what is live).
        model_version: the annotator's model version, recorded in every store.
        config: how the final stores choose their FAISS index type (default: `auto`, exact while small).
        progress: show a progress bar while the final stores are built.
    """

    def __init__(self, index_dir: str | os.PathLike, backend: TextBackend, model_version: str,
                 config: VectorStoreConfig | None = None, progress: bool = False):
        self.name = "faiss"
        self.index_dir = Path(index_dir)
        self.backend = backend
        self.model_version = model_version
        self.config = config or VectorStoreConfig()
        self.progress = progress
        self._live: dict[str, VectorStore] = {}
        self._dims: dict[str, int] = {}

    # --- during the build ------------------------------------------------------------------------

    def begin(self, version: str, live: str | None) -> None:
        self._live = {}
        if live is None:
            return
        folder = version_dir(self.index_dir, self.backend, live)
        stores = {}
        for kind in VECTOR_KINDS:
            try:
                stores[kind] = VectorStore.load(folder / kind, expect_kind=kind,
                                                expect_model_version=self.model_version)
            except VectorStoreError:  # none (built without a checkpoint), another model, or damaged: annotate again
                return
        self._live = stores
        self._dims = {kind: store.dimension for kind, store in stores.items()}

    def lacking(self, image_ids: Sequence[str]) -> set[str]:
        if not self._live:
            return set(image_ids)
        return {i for i in image_ids if any(i not in store for store in self._live.values())}

    def problem(self, image: AnnotatedImage | None) -> str | None:
        return vector_problem(image, self._dims)

    def write(self, version: str, part: tuple[int, int], seq: int, fresh: Sequence[AnnotatedImage],
              carried: Sequence[str], documents: Mapping[str, Mapping] | None = None) -> str | None:
        if not fresh and not carried:
            return None
        ids, arrays = batch_arrays(fresh, carried, self._live)
        folder = segment_dir(self.index_dir, version, part)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"seg-{seq:06d}-{secrets.token_hex(3)}.npz"
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, image_ids=np.array(ids), model_version=np.array(self.model_version), **arrays)
        return name

    def delete(self, version: str, image_ids: Sequence[str]) -> None:
        """Nothing to do: `publish` reads only the segments journaled batches name."""

    # --- at the switch -----------------------------------------------------------------------------

    def _journaled(self, version: str, parts: Sequence[str]) -> dict[str, list[dict]]:
        """Every part's journaled batch records (the segments they name are the vectors to publish)."""
        records: dict[str, list[dict]] = {}
        for part in parts:
            path = journal_path(self.index_dir, version, part_of(part))
            if not path.is_file():
                raise VectorBuildError(
                    f"build {version}: the journal of part {part} is not in {path.parent}: the workers of a "
                    "sharded job with a checkpoint must share one --index-dir, because the vectors of every part "
                    "are merged by the last one (or use --vectors es); the live index is untouched")
            records[part] = list(Journal(path).batches())
        return records

    def publish(self, version: str, parts: Sequence[str]) -> dict[str, int]:
        rows: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in VECTOR_KINDS}
        for part, records in sorted(self._journaled(version, parts).items()):
            folder = segment_dir(self.index_dir, version, part_of(part))
            for record in records:
                wanted = list(record.get("indexed", [])) + list(record.get("unchanged", []))
                if not wanted:
                    continue
                name = record.get("vectors")
                if not name:
                    raise VectorBuildError(
                        f"part {part} of build {version} journaled {len(wanted)} images without vectors "
                        "(was that worker run without the checkpoint?); rerun every part with --fresh")
                segment = self._read_segment(folder / name, part)
                index = {image_id: row for row, image_id in enumerate(segment["image_ids"].tolist())}
                missing = [i for i in wanted if i not in index]
                if missing:
                    raise VectorBuildError(f"{folder / name} lacks the vectors of {missing[:3]}; rerun with --fresh")
                take = np.array([index[i] for i in wanted], dtype=np.int64)
                for kind in VECTOR_KINDS:
                    for image_id, vector in zip(wanted, segment[kind][take]):  # (D,) rows; a later batch wins
                        rows[kind][image_id] = vector
        ids = sorted(rows[VECTOR_KINDS[0]])
        check_against_text(self.backend, version, ids)
        target = version_dir(self.index_dir, self.backend, version)
        remove_version(self.index_dir, self.backend, version)  # a publish cut short before the switch
        counts = {}
        for kind in VECTOR_KINDS:
            if not ids:
                continue
            matrix = np.stack([rows[kind][i] for i in ids])  # (N, D)
            store = VectorStore.build(ids, matrix, kind=kind, model_version=self.model_version, config=self.config,
                                      progress=self.progress)
            store.save(target / kind)
            counts[kind] = len(store)
        return counts

    def location(self, version: str) -> str:
        return str(version_dir(self.index_dir, self.backend, version))

    def discard(self, version: str) -> None:
        remove_version(self.index_dir, self.backend, version)

    # --- helpers -----------------------------------------------------------------------------------

    def _read_segment(self, path: Path, part: str) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                segment = {key: data[key] for key in ("image_ids", "model_version", *VECTOR_KINDS)}
        except FileNotFoundError:
            raise VectorBuildError(
                f"vector segment {path} of part {part} is missing: the workers of a sharded job with a "
                "checkpoint must share one --index-dir; copy the part's builds/ folder there, or rerun with --fresh"
            ) from None
        except (OSError, ValueError, KeyError) as e:
            raise VectorBuildError(f"vector segment {path} is unreadable ({e}); rerun with --fresh") from e
        if str(segment["model_version"]) != self.model_version:
            raise VectorBuildError(f"{path} holds vectors of model {str(segment['model_version'])!r}, "
                                   f"not {self.model_version!r}; rerun with --fresh")
        return segment


class EsVectorWriter:
    """Writes every kind of vector of a build into Elasticsearch kNN indices beside the text index.

    Args:
        backend: the Elasticsearch text backend being built (the vectors use its cluster, alias and client).
        model_version: the annotator's model version, recorded in every index.
    """

    def __init__(self, backend: TextBackend, model_version: str):
        if backend.name != "es":
            raise ReindexError(f"--vectors es needs the Elasticsearch text backend, not {backend.name!r}")
        self.name = "es"
        self.backend = backend
        self.model_version = model_version
        self._live: dict[str, object] = {}
        self._dims: dict[str, int] = {}
        self._build: dict[str, object] = {}

    def _index(self, kind: str, version: str):
        return es_vector_index(self.backend, kind, version)

    def begin(self, version: str, live: str | None) -> None:
        from indexer.vectors.es_knn import EsVectorIndex

        self._live, self._build = {}, {}
        for kind in VECTOR_KINDS:  # a resumed build: its indices exist, with their dimension
            try:
                index = EsVectorIndex.open(self._index(kind, version).index, settings=self.backend.settings,
                                           client=self.backend.client, expect_model_version=self.model_version)
            except VectorStoreNotFound:
                continue
            self._build[kind] = index
            self._dims.setdefault(kind, index.dimension)
        if live is None:
            return
        stores = {}
        for kind in VECTOR_KINDS:
            try:
                stores[kind] = EsVectorIndex.open(self._index(kind, live).index, settings=self.backend.settings,
                                                  client=self.backend.client, expect_kind=kind,
                                                  expect_model_version=self.model_version)
            except VectorStoreError:  # none (FAISS or no checkpoint), another model: annotate again
                return
        self._live = stores
        for kind, store in stores.items():
            self._dims.setdefault(kind, store.dimension)

    def lacking(self, image_ids: Sequence[str]) -> set[str]:
        if not self._live:
            return set(image_ids)
        have = set(image_ids)
        for store in self._live.values():
            have &= store.present(image_ids)
        return set(image_ids) - have

    def problem(self, image: AnnotatedImage | None) -> str | None:
        return vector_problem(image, self._dims)

    def _target(self, kind: str, version: str, dimension: int):
        index = self._build.get(kind)
        if index is None:
            from indexer.vectors.es_knn import EsVectorIndex

            index = EsVectorIndex(self._index(kind, version).index, dimension, kind=kind,
                                  model_version=self.model_version, settings=self.backend.settings,
                                  client=self.backend.client)
            try:
                index.create(building=True)  # an existing one (another worker's) must have the same dimension
            except VectorStoreError:
                if not index.exists():  # not a race with another worker creating it
                    raise
            self._build[kind] = index
        return index

    def write(self, version: str, part: tuple[int, int], seq: int, fresh: Sequence[AnnotatedImage],
              carried: Sequence[str], documents: Mapping[str, Mapping] | None = None) -> str | None:
        if not fresh and not carried:
            return None
        ids, arrays = batch_arrays(fresh, carried, self._live)
        for kind in VECTOR_KINDS:
            self._target(kind, version, arrays[kind].shape[1]).add(ids, arrays[kind], documents=documents or {})
        return f"es:{len(ids)}"

    def delete(self, version: str, image_ids: Sequence[str]) -> None:
        for kind in VECTOR_KINDS:
            index = self._index(kind, version)
            if index.exists():
                index.remove(image_ids)

    def publish(self, version: str, parts: Sequence[str]) -> dict[str, int]:
        from indexer.vectors.es_knn import EsVectorIndex

        counts = {}
        expected = self.backend.count(version)
        for kind in VECTOR_KINDS:
            try:
                index = EsVectorIndex.open(self._index(kind, version).index, settings=self.backend.settings,
                                           client=self.backend.client)
            except VectorStoreNotFound:
                if expected == 0:
                    continue
                raise VectorBuildError(f"build {version}: no {kind} kNN index although the text index holds "
                                       f"{expected} documents; rerun with --fresh") from None
            index.refresh()
            ids = index.image_ids()
            check_against_text(self.backend, version, ids)
            index.finish_build()
            counts[kind] = len(ids)
        return counts

    def location(self, version: str) -> str:
        names = ", ".join(self._index(kind, version).index for kind in VECTOR_KINDS)
        return f"Elasticsearch {self.backend.settings.safe_url} ({names})"

    def discard(self, version: str) -> None:
        for kind in VECTOR_KINDS:
            self._index(kind, version).delete_index()
