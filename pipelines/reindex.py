"""Batch reindex job: images -> (annotate) -> documents -> a new text index version -> atomic switch.

Stages, one per function (reader -> mapper -> writer):

    list_images      the images of this shard, sorted by image id (pipelines/reindex_stages.py)
    inspect_image    read bytes, skip corrupt/oversized files with a reason, hash the content
    _process         unchanged images: carry the live document over; changed ones: annotate, build
    backend.index    write the batch into the version being built (not the live one)
    vectors.write    save the batch's vectors beside the build (pipelines/reindex_vectors.py)
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
- Vectors: with a cascade checkpoint the job also writes FAISS stores of the CNN embeddings and
  the context vectors for the version (pipelines/reindex_vectors.py): per-batch segments saved
  before each journal line, one store per kind built when every part is in, checked to hold
  exactly the text version's image ids, saved under `<index_dir>/vectors/<space>/<version>/`
  *before* the text switch. Readers resolve vectors through the text index's live version
  (indexer.vectors.live), so the one switch makes both live; vectors never show without text.

The cascade's annotator is optional (`annotator=None`: documents from the manifest and reports
only; `load_annotator(checkpoint)` gives the trained cascade's, pipelines/annotator.py); so are
the vectors (written when the annotator `produces_vectors` and `config.vectors` is true).
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from indexer.documents import (
    DocumentInput, SCHEMA_VERSION, VocabularyLike, build_document, content_hash, default_vocabulary,
)
from indexer.errors import IndexerError
from indexer.text import open_backend
from indexer.text.base import TextBackend, check_version_name, new_version_name
from pipelines.annotator import AnnotatedImage, Annotator, AnnotatorError, CascadeAnnotator, load_annotator
from pipelines.manifest import read_manifest
from pipelines.reindex_stages import (
    IMAGE_SUFFIXES, MAX_FILE_BYTES, MAX_PIXELS, MIN_SIDE, Item, Journal, ReindexCancelled, ReindexError, file_digest,
    in_shard, inspect_image, is_synthetic_folder, list_images, load_report_map, parse_shard,
)

if TYPE_CHECKING:
    from pipelines.reindex_vectors import VectorWriter

DEFAULT_BATCH = 256


__all__ = ["DEFAULT_BATCH", "IMAGE_SUFFIXES", "MAX_FILE_BYTES", "MAX_PIXELS", "MIN_SIDE", "AnnotatedImage", "Annotator",
           "CascadeAnnotator", "ReindexCancelled", "ReindexConfig", "ReindexError", "ReindexJob", "ReindexProgress",
           "ReindexSummary", "in_shard", "list_images", "load_annotator", "parse_shard", "run_reindex"]


def __getattr__(name: str):
    """The vector side's names, imported on first use (a text-only job never loads FAISS)."""
    if name in ("FaissVectorWriter", "VectorWriter", "VectorBuildError"):
        from pipelines import reindex_vectors

        return getattr(reindex_vectors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- configuration, progress, summary --------------------------------------------------------------


@dataclass
class ReindexConfig:
    """One reindex job.

    Attributes:
        images: folder of `<image id>.png` files (Open-i layout, or the synthetic corpus).
        index_dir: home of the embedded index and of every build's journal.
        backend: 'embedded' or 'es'.
        manifest: the manifest from `cxrsearch data prepare` (None: images carry no report data).
        reports: Open-i reports (folder or .tgz) for the report sections (None: sections omitted).
        checkpoint: a cascade checkpoint to annotate with (None: no generated annotations).
        shard: (I, N), 1 <= I <= N.
        build: version name shared by the N workers of a sharded job (default: a fresh name, or the
            unfinished build being resumed).
        fresh: discard unfinished builds of this job instead of resuming them.
        keep_previous: keep the previously live version after switching.
        es: Elasticsearch settings (default: from CXRSEARCH_ES_* variables).
        vectors: write FAISS stores of the annotator's vectors (when it produces them).
        vector_config: how those stores pick their FAISS index type (default: exact while small).
    """

    images: Path
    index_dir: Path
    backend: str = "embedded"
    manifest: Path | None = None
    reports: Path | None = None
    checkpoint: Path | None = None
    shard: tuple[int, int] = (1, 1)
    batch_size: int = DEFAULT_BATCH
    build: str | None = None
    fresh: bool = False
    keep_previous: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    es: object | None = None
    progress_bar: bool = True
    vectors: bool = True
    vector_config: object | None = None


@dataclass
class ReindexProgress:
    """Where a running job is (passed to the progress callback after every batch)."""

    phase: str
    version: str
    done: int
    total: int
    indexed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class ReindexSummary:
    """What the job did: indexed (new or changed), unchanged (carried over), skipped and failed with why."""

    backend: str
    version: str
    part: str
    images: int = 0
    indexed: int = 0
    unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    missing_images: int = 0
    resumed: int = 0
    seconds: float = 0.0
    stream_seconds: float = 0.0
    parts_done: int = 0
    parts_total: int = 1
    switched: bool = False
    nothing_changed: bool = False
    live_version: str | None = None
    previous_version: str | None = None
    documents: int = 0
    model_version: str | None = None
    vectors: dict[str, int] = field(default_factory=dict)
    vectors_dir: str | None = None

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"], d["failed"] = dict(self.skipped), dict(self.failed)
        return d

    def format(self) -> str:
        """A short human-readable summary (what `cxrsearch reindex` prints at the end)."""
        streamed = self.images - self.resumed
        rate = streamed / self.stream_seconds if self.stream_seconds > 0 else 0.0
        lines = [f"reindex ({self.backend}, part {self.part}, version {self.version}): {self.images} images, "
                 f"{self.seconds:.1f} s in all ({rate:.0f} images/s while indexing)"
                 + (f", resumed after {self.resumed}" if self.resumed else ""),
                 f"  indexed   {self.indexed:6d}  new or changed",
                 f"  unchanged {self.unchanged:6d}  same content hash and model version: carried over",
                 f"  skipped   {self.n_skipped:6d}",
                 *(f"    {n:6d}  {why}  (e.g. {self.examples.get(why, '')})" for why, n in self.skipped.most_common()),
                 f"  failed    {self.n_failed:6d}",
                 *(f"    {n:6d}  {why}  (e.g. {self.examples.get(why, '')})" for why, n in self.failed.most_common())]
        if self.missing_images:
            lines.append(f"  note: {self.missing_images} manifest images of this shard have no file "
                         "in the image folder")
        if self.nothing_changed:
            lines.append(f"  nothing changed: live version {self.live_version} kept, the new build was dropped")
        elif self.switched:
            lines.append(f"  live: {self.live_version} ({self.documents} documents)"
                         + (f", replacing {self.previous_version}" if self.previous_version else ""))
            if self.vectors:
                lines.append(f"  vectors: {self.vectors.get('cnn_embedding', 0)} CNN embeddings, "
                             f"{self.vectors.get('context_vector', 0)} context vectors in {self.vectors_dir}")
            else:
                lines.append("  vectors: none (no --checkpoint: `cxrsearch similar` needs a reindex with one)")
        else:
            lines.append(f"  parts done {self.parts_done}/{self.parts_total}: the worker finishing the last part "
                         "switches the live index")
        return "\n".join(lines)


# --- stages -------------------------------------------------------------------------------------------

class ReindexJob:
    """One reindex run; `run()` returns the summary. The web app calls it from a worker thread.

    Args:
        config: what to index and where.
        annotator: the cascade's annotator (default: `load_annotator(config.checkpoint)` when a
            checkpoint is given, else none).
        backend: an open text backend (default: opened from the config).
        vectors: where vectors go (default: a FaissVectorWriter when the annotator produces vectors
            and `config.vectors` is true; else none, text only).
        vocabulary: maps MeSH terms to concepts (default: the project's vocabulary).
        progress: called with a ReindexProgress after every batch.
        cancel: set it to stop after the current batch (the build stays resumable).
    """

    def __init__(self, config: ReindexConfig, *, annotator: Annotator | None = None,
                 backend: TextBackend | None = None, vectors: VectorWriter | None = None,
                 vocabulary: VocabularyLike | None = None, progress: Callable[[ReindexProgress], None] | None = None,
                 cancel: threading.Event | None = None):
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
            from pipelines.reindex_vectors import FaissVectorWriter

            vectors = FaissVectorWriter(config.index_dir, self.backend, annotator.model_version, config.vector_config,
                                        progress=config.progress_bar)
        self.vectors = vectors
        self._resumed = False
        self.vocabulary = vocabulary if vocabulary is not None else default_vocabulary()
        self.progress = progress
        self.cancel = cancel or threading.Event()
        if not 1 <= config.batch_size <= 100_000:
            raise ReindexError(f"batch size {config.batch_size}: must be between 1 and 100000")
        i, n = config.shard
        if not 1 <= i <= n:
            raise ReindexError(f"shard {i}/{n}: I must be between 1 and N")
        self.part = f"{i}/{n}"

    @property
    def model_version(self) -> str | None:
        return getattr(self.annotator, "model_version", None) if self.annotator is not None else None

    def _job_key(self) -> dict:
        c = self.config
        settings = getattr(self.backend, "settings", None)
        target = (str(Path(c.index_dir).resolve()) if self.backend.name == "embedded"
                  else f"{getattr(settings, 'safe_url', '')}#{getattr(settings, 'index', '')}")
        return {"backend": self.backend.name, "target": target, "images": str(Path(c.images).resolve()),
                "manifest": file_digest(c.manifest), "reports": file_digest(c.reports),
                "model_version": self.model_version, "part": self.part, "schema": SCHEMA_VERSION,
                "vectors": self.vectors is not None}

    def _journal_path(self, version: str) -> Path:
        i, n = self.config.shard
        return Path(self.config.index_dir) / "builds" / version / f"journal-{i}of{n}.jsonl"

    def _find_build(self, key: dict, live: str | None, existing: set[str]) -> tuple[str | None, list[str]]:
        """An unfinished build of this job to resume, and local builds that cannot be resumed.

        A build whose version is live already (another worker switched it) or gone is not resumable;
        neither is one started with other inputs.
        """
        builds = Path(self.config.index_dir) / "builds"
        matches, stale = [], []
        if builds.is_dir():
            i, n = self.config.shard
            for path in sorted(builds.glob(f"*/journal-{i}of{n}.jsonl")):
                header = Journal(path).header()
                version = path.parent.name
                ok = header is not None and header.get("key") == key and version != live and version in existing
                (matches if ok else stale).append(version)
        return (matches[-1] if matches else None), stale

    def _open_version(self) -> tuple[str, Journal, bool]:
        """Pick the version to build into: resume, join a sharded build, or create one."""
        key = self._job_key()
        existing = set(self.backend.versions())
        live = self.backend.live_version()
        if self.config.build:
            version = check_version_name(self.config.build)
            if version == live:
                raise ReindexError(f"--build {version}: that version is live; name a new build")
            if self.config.fresh and version in existing:
                raise ReindexError(f"--fresh --build {version}: that build exists already (other workers may be "
                                   "writing into it); name a new build to start from scratch")
            journal = Journal(self._journal_path(version))
            header = journal.header()
            if version not in existing:
                try:
                    self.backend.create(version)
                except IndexerError:
                    if version not in self.backend.versions():  # not a race with another worker
                        raise
                header = None  # a journal without its index counts for nothing
            elif header is not None and header.get("key") != key:
                raise ReindexError(f"--build {version} was started with other inputs ({journal.path}); "
                                   "name a new build")
            if header is None:
                journal.start({"key": key, "version": version})
                return version, journal, False
            return version, journal, True

        resume, stale = self._find_build(key, live, existing)
        sharded = self.config.shard[1] > 1
        for version in stale + ([resume] if resume and self.config.fresh else []):
            # never drop a version other workers may still be writing, nor the live one
            self._discard_build(version, drop_index=not sharded and version != live and version in existing)
        if resume and not self.config.fresh:
            return resume, Journal(self._journal_path(resume)), True
        version = new_version_name()
        journal = Journal(self._journal_path(version))
        journal.start({"key": key, "version": version})  # first: a kill before create leaves no orphan index
        self.backend.create(version)
        return version, journal, False

    def _discard_build(self, version: str, drop_index: bool) -> None:
        if drop_index:
            try:
                self.backend.drop(version)
            except IndexerError:
                pass
            if self.vectors is not None:
                self.vectors.discard(version)  # vectors published by a run killed before its switch
        shutil.rmtree(Path(self.config.index_dir) / "builds" / version, ignore_errors=True)

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
        version, journal, resumed = self._open_version()
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
                self._count(summary, record)
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
                self._count(summary, record)
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

        self._finish(summary, version, journal, live)
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
            record["vectors"] = self.vectors.write(version, self.config.shard, self._seq + 1,
                                                   [generated[i] for i in record["indexed"]], record["unchanged"])
        if self._resumed and (record["skipped"] or record["failed"]):
            # a run killed after writing this batch but before journaling it may have left documents
            # that this run no longer indexes: remove them, so text and vectors hold the same images
            self.backend.delete([*record["skipped"], *record["failed"]], version=version, refresh=False)
        return record

    @staticmethod
    def _count(summary: ReindexSummary, record: dict) -> None:
        summary.indexed += len(record["indexed"])
        summary.unchanged += len(record["unchanged"])
        for field_name in ("skipped", "failed"):
            counter: Counter = getattr(summary, field_name)
            for image_id, why in record[field_name].items():
                counter[why] += 1
                summary.examples.setdefault(why, image_id)

    def _finish(self, summary: ReindexSummary, version: str, journal: Journal, live: str | None) -> None:
        """Record this part; when every part is in, switch (or keep the live index if nothing changed)."""
        self.backend.refresh(version)
        stats = {"images": summary.images, "indexed": summary.indexed, "unchanged": summary.unchanged,
                 "skipped": summary.n_skipped, "failed": summary.n_failed}
        parts = self.backend.record_part(version, self.part, stats)
        summary.parts_done = len(parts)
        if len(parts) < summary.parts_total:
            return
        live = self.backend.live_version()
        changed = sum(int(p.get("indexed", 0)) for p in parts.values())
        documents = self.backend.count(version)
        summary.documents = documents
        if live is not None and live != version and changed == 0 and documents == self.backend.count(live):
            summary.nothing_changed, summary.live_version = True, live
            self.backend.drop(version)
            if self.vectors is not None:
                self.vectors.discard(version)
        else:
            if self.vectors is not None:  # first the vectors, complete, under the version: not live yet
                summary.vectors = self._publish_vectors(version, parts)
            # the atomic step: the text index's live version now names `version`, and with it its vectors
            summary.previous_version = self.backend.switch(version, keep_previous=self.config.keep_previous)
            summary.switched, summary.live_version = True, version
            if self.vectors is not None:
                from indexer.vectors.live import version_dir

                summary.vectors_dir = str(version_dir(self.config.index_dir, self.backend, version))
            if (Path(self.config.index_dir) / "vectors").is_dir():  # also after a text-only build
                from indexer.vectors.live import remove_orphans

                remove_orphans(self.config.index_dir, self.backend)  # the vectors of versions the switch dropped
        shutil.rmtree(journal.path.parent, ignore_errors=True)

    def _publish_vectors(self, version: str, parts: dict[str, dict]) -> dict[str, int]:
        """Build the version's vector stores from every part's journaled segments (before the switch)."""
        records: dict[str, list[dict]] = {}
        for part in parts:
            i, n = (int(x) for x in part.split("/"))
            path = Path(self.config.index_dir) / "builds" / version / f"journal-{i}of{n}.jsonl"
            if not path.is_file():
                raise ReindexError(f"build {version}: the journal of part {part} is not in {path.parent}: the "
                                   "workers of a sharded job with a checkpoint must share one --index-dir, "
                                   "because the vectors of every part are merged by the last one; the live "
                                   "index is untouched")
            records[part] = list(Journal(path).batches())
        return self.vectors.publish(version, records)  # VectorBuildError (a ReindexError) when they cannot be

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
