"""The reindex job's typed data: its configuration, the progress it reports and the summary it returns."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.reindex.stages import MAX_FILE_BYTES, ReindexError

DEFAULT_BATCH = 256
VECTOR_BACKENDS = ("faiss", "es")


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
        vectors: write the annotator's vectors (when it produces them).
        vector_backend: where vectors go: 'faiss' (files under index_dir, default) or 'es'
            (`dense_vector` indices beside the Elasticsearch text index; needs backend 'es').
        vector_config: how FAISS stores pick their index type (default: exact while small).
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
    vector_backend: str = "faiss"
    vector_config: object | None = None

    def check(self) -> None:
        """Raise ReindexError naming the first setting that cannot work."""
        if not 1 <= self.batch_size <= 100_000:
            raise ReindexError(f"batch size {self.batch_size}: must be between 1 and 100000")
        i, n = self.shard
        if not 1 <= i <= n:
            raise ReindexError(f"shard {i}/{n}: I must be between 1 and N")
        if self.vector_backend not in VECTOR_BACKENDS:
            raise ReindexError(f"vector backend {self.vector_backend!r} is unknown; "
                               f"valid: {', '.join(VECTOR_BACKENDS)}")
        if self.vector_backend == "es" and self.vectors and self.backend != "es":
            raise ReindexError(f"--vectors es needs the Elasticsearch text backend (--backend es), not "
                               f"{self.backend!r}: the vectors live beside the text index on one cluster")

    @property
    def part(self) -> str:
        """'I/N', the name of this worker's part of a build."""
        return f"{self.shard[0]}/{self.shard[1]}"


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
    vector_backend: str | None = None

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def count(self, record: dict) -> None:
        """Add one journal record (one batch) to the totals."""
        self.indexed += len(record["indexed"])
        self.unchanged += len(record["unchanged"])
        for field_name in ("skipped", "failed"):
            counter: Counter = getattr(self, field_name)
            for image_id, why in record[field_name].items():
                counter[why] += 1
                self.examples.setdefault(why, image_id)

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
                lines.append(f"  vectors ({self.vector_backend or 'faiss'}): "
                             f"{self.vectors.get('cnn_embedding', 0)} CNN embeddings, "
                             f"{self.vectors.get('context_vector', 0)} context vectors, "
                             f"{self.vectors.get('findings', 0)} findings vectors in {self.vectors_dir}")
            else:
                lines.append("  vectors: none (no --checkpoint: `cxrsearch similar` needs a reindex with one)")
        else:
            lines.append(f"  parts done {self.parts_done}/{self.parts_total}: the worker finishing the last part "
                         "switches the live index")
        return "\n".join(lines)
