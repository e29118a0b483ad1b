"""The reindex run loop: images -> (annotate) -> documents -> a new text index version -> atomic switch.

Stages, one per function (reader -> mapper -> writer):

    list_images      the images of this shard, sorted by image id (stages.py)
    inspect_image    read bytes, skip corrupt/oversized files with a reason, hash the content
    _process         unchanged images: carry the live document over; changed ones: annotate, build
    backend.index    write the batch into the version being built (not the live one)
    vectors.write    save the batch's vectors for the build (vectors.py)
    journal          append what the batch did; a resumed job skips what the journal lists

Guarantees:
- Resumable: killed at any point, the next run with the same inputs finds the unfinished build
  (`<index_dir>/builds/<version>/journal-IofN.jsonl`) and continues it. Documents are written by
  image id (upsert), so a batch written but not yet journaled is simply written again: no
  duplicates, nothing lost.
- Idempotent: a document records its content hash (image bytes, manifest entry, report,
  vocabulary, schema) and model version; an image whose both are unchanged is carried over
  without annotating it again, and when nothing changed at all the new version is dropped and the
  live one kept.
- Atomic: the job builds a new version aside and only then switches the alias (Elasticsearch
  alias move / embedded pointer-file rename). A failed or killed job leaves the live index as it was.
- Sharded: `shard=(I, N)` takes the images whose crc32(image id) % N == I - 1. All N workers write
  into one version (`build=NAME`, the same on every worker); each records its part with the
  version, and the worker that completes the last part switches.
- Vectors: with a cascade checkpoint the job also writes the CNN embeddings and the context
  vectors for the version (vectors.py): into FAISS stores under `<index_dir>/vectors/` (per-batch
  segments saved before each journal line, one store per kind built when every part is in) or,
  with `vector_backend='es'`, into Elasticsearch `dense_vector` indices beside the text index
  (written per batch). Either way they are checked to hold exactly the text version's image ids
  *before* the text switch, and readers resolve vectors through the text index's live version
  (indexer.vectors.live), so the one switch makes both live; vectors never show without text.

Where things are: config.py (the dataclasses), lifecycle.py (open/resume/discard/finish a build),
stages.py (reading and checking images, the journal), vectors.py (the vector writers), this module
(the run loop), engine.py (running the N parts on a Dask cluster).

The cascade's annotator is optional (`annotator=None`: documents from the manifest and reports
only; `load_annotator(checkpoint)` gives the trained cascade's, pipelines/annotator.py); so are
the vectors (written when the annotator `produces_vectors` and `config.vectors` is true).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from indexer.documents import DocumentInput, VocabularyLike, build_document, content_hash, default_vocabulary
from indexer.errors import IndexerError
from indexer.text import open_backend
from indexer.text.base import TextBackend
from pipelines.annotator import AnnotatedImage, Annotator, AnnotatorError, load_annotator
from pipelines.manifest import read_manifest
from pipelines.reindex.config import ReindexConfig, ReindexProgress, ReindexSummary
from pipelines.reindex.lifecycle import BuildLifecycle
from pipelines.reindex.stages import (
    Item,
    ReindexCancelled,
    ReindexError,
    in_shard,
    inspect_image,
    is_synthetic_folder,
    list_images,
    load_report_map,
)

if TYPE_CHECKING:
    from pipelines.reindex.vectors import VectorWriter


class ReindexJob:
    """One reindex run; `run()` returns the summary. The web app calls it from a worker thread.

    Args:
        config: what to index and where.
        annotator: the cascade's annotator (default: `load_annotator(config.checkpoint)` when a
            checkpoint is given, else none).
        backend: an open text backend (default: opened from the config).
        vectors: where vectors go (default: the writer of `config.vector_backend` when the annotator
            produces vectors and `config.vectors` is true; else none, text only).
        vocabulary: maps MeSH terms to concepts (default: the project's vocabulary).
        progress: called with a ReindexProgress after every batch.
        cancel: set it to stop after the current batch (the build stays resumable).
    """

    def __init__(self, config: ReindexConfig, *, annotator: Annotator | None = None,
                 backend: TextBackend | None = None, vectors: VectorWriter | None = None,
                 vocabulary: VocabularyLike | None = None, progress: Callable[[ReindexProgress], None] | None = None,
                 cancel: threading.Event | None = None):
        config.check()
        self.config = config
        if annotator is None and config.checkpoint is not None:
            try:
                annotator = load_annotator(config.checkpoint)
            except AnnotatorError as e:
                raise ReindexError(str(e)) from e
        self.annotator = annotator
        self._own_backend = backend is None
        self.backend = backend or open_backend(config.backend, index_dir=config.index_dir, es_settings=config.es)
        if vectors is None and config.vectors and getattr(annotator, "produces_vectors", False):
            from pipelines.reindex.vectors import open_vector_writer  # a text-only job never loads FAISS

            vectors = open_vector_writer(config, self.backend, annotator.model_version)
        self.vectors = vectors
        self.builds = BuildLifecycle(config, self.backend, vectors, self.model_version)
        self._resumed = False
        self._seq = 0
        self.vocabulary = vocabulary if vocabulary is not None else default_vocabulary()
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.part = config.part

    @property
    def model_version(self) -> str | None:
        return getattr(self.annotator, "model_version", None) if self.annotator is not None else None

    def run(self) -> ReindexSummary:
        """Run (or resume) the job to the end; see the module docstring for what that guarantees."""
        c = self.config
        started = time.monotonic()
        self.backend.check()
        if c.manifest is None and self.annotator is None:
            raise ReindexError("nothing to index from: give a manifest (`cxrsearch data prepare`) or a --checkpoint")
        entries = {e.image_id: e for e in read_manifest(c.manifest)} if c.manifest is not None else {}
        reports = load_report_map(c.reports)
        images = list_images(c.images, c.shard)
        synthetic = is_synthetic_folder(Path(c.images))
        version, journal, resumed = self.builds.open()
        live = self.backend.live_version()
        self._resumed = resumed
        if self.vectors is not None:
            self.vectors.begin(version, live)
        summary = ReindexSummary(backend=self.backend.name, version=version, part=self.part,
                                 parts_total=c.shard[1], model_version=self.model_version)
        on_disk = {image_id for image_id, _ in images}
        summary.missing_images = sum(1 for i in entries if in_shard(i, c.shard) and i not in on_disk)

        done: set[str] = set()
        self._seq = 0  # journal lines so far: numbers the vector segments
        if resumed:
            for record in journal.recover():
                summary.count(record)
                done.update(record["indexed"], record["unchanged"], record["skipped"], record["failed"])
                self._seq += 1
            summary.resumed = len(done)
        todo = [(i, p) for i, p in images if i not in done]
        summary.images = len(images)

        streaming = time.monotonic()
        done_count = len(images) - len(todo)
        bar = tqdm(total=len(images), initial=done_count, unit="img", dynamic_ncols=True,
                   desc=f"reindex {self.backend.name} {self.part}", disable=not c.progress_bar)
        try:
            for start in range(0, len(todo), c.batch_size):
                if self.cancel.is_set():
                    raise ReindexCancelled(f"reindex cancelled; build {version} is kept and resumes on the next run")
                batch = [Item(i, p, entries.get(i), None) for i, p in todo[start:start + c.batch_size]]
                for item in batch:
                    if item.entry is not None:
                        item.report = reports.get(item.entry.report_id)
                record = self._process(batch, version, live, synthetic)
                journal.append(record)  # after the batch's text and vectors are durable
                self._seq += 1
                summary.count(record)
                done_count += len(batch)
                bar.update(len(batch))
                bar.set_postfix(indexed=summary.indexed, unchanged=summary.unchanged,
                                skipped=summary.n_skipped, failed=summary.n_failed, refresh=False)
                if self.progress is not None:
                    self.progress(ReindexProgress("indexing", version, done_count, len(images), summary.indexed,
                                                  summary.unchanged, summary.n_skipped, summary.n_failed,
                                                  time.monotonic() - started))
        finally:
            bar.close()
            summary.stream_seconds = time.monotonic() - streaming

        self.builds.finish(summary, version, journal)
        summary.seconds = time.monotonic() - started
        if self.progress is not None:
            self.progress(ReindexProgress("done", summary.live_version or version, len(images), len(images),
                                          summary.indexed, summary.unchanged, summary.n_skipped, summary.n_failed,
                                          summary.seconds))
        if summary.switched or summary.nothing_changed:
            last = Path(c.index_dir) / f"last_reindex_{self.backend.name}.json"
            last.write_text(json.dumps(summary.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return summary

    def _process(self, batch: list[Item], version: str, live: str | None, synthetic: bool) -> dict:
        """Inspect, map and write one batch; returns its journal record."""
        record: dict = {"indexed": [], "unchanged": [], "skipped": {}, "failed": {}}
        usable = []
        for item in batch:
            reason = inspect_image(item, self.config.max_file_bytes)
            if reason:
                record["skipped"][item.image_id] = reason
                continue
            item.content_hash = content_hash(item.digest, item.entry, item.report, synthetic, self.vocabulary)
            usable.append(item)

        previous = self.backend.get_many([i.image_id for i in usable], version=live) if live and usable else {}
        same = {item.image_id for item in usable if _unchanged(previous.get(item.image_id), item.content_hash,
                                                                  self.model_version)}
        if self.vectors is not None and same:
            same -= self.vectors.lacking(sorted(same))  # no vector to carry over: annotate it again
        docs, carried, changed = [], [], []
        for item in usable:
            if item.image_id in same:
                docs.append(previous[item.image_id])
                carried.append(item.image_id)
            else:
                changed.append(item)

        generated: dict[str, AnnotatedImage] = {}
        if self.annotator is not None and changed:
            try:
                for out in self.annotator([(i.image_id, i.path) for i in changed]):
                    generated[out.image_id] = out
            except Exception as e:  # the model failed on this batch: count it, keep going
                for item in changed:
                    record["failed"][item.image_id] = f"annotate failed ({type(e).__name__}: {e})"
                changed = []
        fresh = []
        for item in changed:
            out = generated.get(item.image_id)
            if self.annotator is not None and (out is None or out.annotation is None):
                record["skipped"][item.image_id] = (out.skip_reason if out else None) or "not annotated by the model"
                continue
            problem = self.vectors.problem(out) if self.vectors is not None else None
            if problem:
                record["failed"][item.image_id] = problem
                continue
            try:
                docs.append(build_document(DocumentInput(
                    item.image_id, item.entry, item.report, (out.annotation,) if out else (), synthetic,
                    item.content_hash), self.vocabulary))
                fresh.append(item.image_id)
            except (IndexerError, ValueError, TypeError) as e:
                record["failed"][item.image_id] = f"document build failed ({type(e).__name__}: {e})"

        result = self.backend.index(docs, version=version, batch_size=max(len(docs), 1), refresh=False)
        record["failed"].update(result.failed)
        record["indexed"] = [i for i in fresh if i not in result.failed]
        record["unchanged"] = [i for i in carried if i not in result.failed]
        if self.vectors is not None:
            by_id = {d["image_id"]: d for d in docs}
            record["vectors"] = self.vectors.write(version, self.config.shard, self._seq + 1,
                                                   [generated[i] for i in record["indexed"]], record["unchanged"],
                                                   by_id)
        if self._resumed and (record["skipped"] or record["failed"]):
            # a run killed after writing this batch but before journaling it may have left documents
            # (and vectors) that this run no longer indexes: remove them, so text and vectors hold the same images
            gone = [*record["skipped"], *record["failed"]]
            self.backend.delete(gone, version=version, refresh=False)
            if self.vectors is not None:
                self.vectors.delete(version, gone)
        return record

    def close(self) -> None:
        if self._own_backend:
            self.backend.close()


def _unchanged(old: dict | None, content_hash: str, model_version: str | None) -> bool:
    """Whether the live document `old` can be carried over: same content hash and model version."""
    return old is not None and old.get("content_hash") == content_hash and \
        _model_versions(old) == ([model_version] if model_version else [])


def _model_versions(doc: dict) -> list[str]:
    value = doc.get("model_version") or []
    return [value] if isinstance(value, str) else list(value)


def run_reindex(config: ReindexConfig, **kwargs) -> ReindexSummary:
    """Run one reindex job to the end (see ReindexJob for the keyword arguments)."""
    job = ReindexJob(config, **kwargs)
    try:
        return job.run()
    finally:
        job.close()
