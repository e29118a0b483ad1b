"""The reindex job's vector side: per-batch segments under the build, one FAISS store per kind when it goes live.

How vectors follow the text index through a build (see pipelines/reindex.py for the text side):

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
them all, so with vectors the N workers need one shared `--index-dir` (as they share a build).
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer.files import fsync_dir
from indexer.errors import VectorStoreError
from indexer.text.base import TextBackend
from indexer.vectors.base import VECTOR_KINDS
from indexer.vectors.faiss_store import VectorStore, VectorStoreConfig
from indexer.vectors.live import remove_version, version_dir
from pipelines.annotator import AnnotatedImage
from pipelines.reindex_stages import ReindexError

# AnnotatedImage attribute holding each stored kind
KIND_FIELDS = {"cnn_embedding": "embedding", "context_vector": "context_vector"}


class VectorBuildError(ReindexError):
    """The vectors of a build cannot be completed (missing part, inconsistent with the text index)."""


class VectorWriter(Protocol):
    """What the reindex job asks of its vector side (FaissVectorWriter is the implementation)."""

    def begin(self, version: str, live: str | None) -> None:
        """Prepare to build `version`; `live` is the version to carry vectors over from."""

    def lacking(self, image_ids: Sequence[str]) -> set[str]:
        """Those of `image_ids` whose vectors cannot be carried over (they are annotated again)."""

    def problem(self, image: AnnotatedImage | None) -> str | None:
        """Why an annotated image's vectors cannot be stored (missing, NaN, zero, wrong size), or None."""

    def write(self, version: str, part: tuple[int, int], seq: int, fresh: Sequence[AnnotatedImage],
              carried: Sequence[str]) -> str | None:
        """Save one batch's vectors durably; returns the segment name the journal line records."""

    def publish(self, version: str, records_by_part: Mapping[str, Sequence[Mapping]]) -> dict[str, int]:
        """Build and save the version's stores from the journaled segments; returns {kind: count}."""

    def discard(self, version: str) -> None:
        """Delete the vectors of a build that will not go live."""


def segment_dir(index_dir: str | os.PathLike, version: str, part: tuple[int, int]) -> Path:
    """<index_dir>/builds/<version>/vectors-IofN: the segments one part of a build wrote."""
    i, n = part
    return Path(index_dir) / "builds" / version / f"vectors-{i}of{n}"


class FaissVectorWriter:
    """Writes both kinds of vectors (CNN embeddings, context vectors) of a build into FAISS stores.

    Args:
        index_dir: the index home; segments go under `builds/`, stores under `vectors/`.
        backend: the text backend being built (its live version and versions decide what is live).
        model_version: the annotator's model version, recorded in every store.
        config: how the final stores choose their FAISS index type (default: `auto`, exact while small).
        progress: show a progress bar while the final stores are built.
    """

    def __init__(self, index_dir: str | os.PathLike, backend: TextBackend, model_version: str,
                 config: VectorStoreConfig | None = None, progress: bool = False):
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
        if image is None:
            return "no annotator output, so no vectors"
        for kind, name in KIND_FIELDS.items():
            value = getattr(image, name)
            if value is None:
                return f"the model gave no {kind}"
            x = np.asarray(value, dtype=np.float32).reshape(-1)  # (D,)
            if x.size == 0 or not np.isfinite(x).all() or not np.linalg.norm(x) > 1e-12:
                return f"unusable {kind} (empty, NaN, infinite or all zeros)"
            expected = self._dims.setdefault(kind, int(x.size))
            if x.size != expected:
                return f"{kind} has {x.size} values, the others {expected}"
        return None

    def write(self, version: str, part: tuple[int, int], seq: int, fresh: Sequence[AnnotatedImage],
              carried: Sequence[str]) -> str | None:
        ids = [a.image_id for a in fresh] + list(carried)
        if not ids:
            return None
        arrays: dict[str, np.ndarray] = {}
        for kind, name in KIND_FIELDS.items():
            rows = [np.asarray(getattr(a, name), dtype=np.float32).reshape(-1) for a in fresh]  # N_fresh x (D,)
            if carried:
                rows += list(self._live[kind].get_vectors(list(carried)))  # (N_carried, D) unit rows
            arrays[kind] = np.stack(rows)  # (N, D)
        folder = segment_dir(self.index_dir, version, part)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"seg-{seq:06d}-{secrets.token_hex(3)}.npz"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, image_ids=np.array(ids), model_version=np.array(self.model_version), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
        fsync_dir(folder)
        return name

    # --- at the switch -----------------------------------------------------------------------------

    def publish(self, version: str, records_by_part: Mapping[str, Sequence[Mapping]]) -> dict[str, int]:
        rows: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in VECTOR_KINDS}
        for part, records in sorted(records_by_part.items()):
            i, n = (int(x) for x in part.split("/"))
            folder = segment_dir(self.index_dir, version, (i, n))
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
        self._check_against_text(version, ids)
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

    def _check_against_text(self, version: str, ids: list[str]) -> None:
        """The stores must hold exactly the text version's image ids: same count, every id present."""
        documents = self.backend.count(version)
        present = 0
        for start in range(0, len(ids), 1000):
            present += len(self.backend.get_many(ids[start:start + 1000], version=version))
        if documents != len(ids) or present != len(ids):
            raise VectorBuildError(
                f"build {version}: the text index holds {documents} documents but the vectors cover {len(ids)} "
                f"images ({len(ids) - present} of them without a document); the live index is untouched; "
                "rerun with --fresh")


