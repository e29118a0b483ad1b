"""The benchmark's section interface and registry, and the context every section gets.

A section is a class with a `name`, a `title`, `available(ctx)` (None, or why it cannot run
here) and `run(ctx) -> SectionResult`. Register it with `@register` and name it in `RUN_ORDER`:
`cxrsearch bench` runs the sections in that order (later sections use what earlier ones built), and
`--sections NAME,...` picks some. A new section -- the search-quality evaluation, a cascade table --
is one module in pipelines/bench/sections/, its import in sections/__init__.py and its place in
`RUN_ORDER`:

    @register
    class SearchQuality(Section):
        name, title = "search_quality", "Search quality per source mode"
        def run(self, ctx):
            result = SectionResult(self.name, self.title)
            result.add(Figure("search_quality.ndcg10", "nDCG@10, all sources", 0.71, "nDCG@10", kind=QUALITY))
            return result

Sections share work through `ctx.shared` (the indexing section leaves its index builds there for
the similar-image and HTTP sections) and write files (plots) into `ctx.out`.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipelines.bench.report import SectionResult

# The order sections run in, explicit (never the order modules happen to be imported in): http needs
# the indexing section's builds, sustained needs the http section's server.
RUN_ORDER = ("indexing", "similar", "service", "scale", "http", "sustained", "fuzz", "cascade", "search_quality")

SECTIONS: list[type[Section]] = []  # registered sections, kept sorted by RUN_ORDER


def register(cls: type[Section]) -> type[Section]:
    """Add a section class to the benchmark, at its place in RUN_ORDER."""
    if cls.name not in RUN_ORDER:
        raise ValueError(f"bench section {cls.name!r} has no place in RUN_ORDER (pipelines/bench/section.py)")
    if any(s.name == cls.name for s in SECTIONS):
        raise ValueError(f"a bench section named {cls.name!r} is registered already")
    SECTIONS.append(cls)
    SECTIONS.sort(key=lambda s: RUN_ORDER.index(s.name))
    return cls


class Section:
    """One part of the benchmark (subclass it and `@register` it)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    quick_ok: ClassVar[bool] = True  # part of --quick

    def available(self, ctx: BenchContext) -> str | None:
        """None when the section can run here, else the reason it is skipped."""
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        raise NotImplementedError


@dataclass
class BenchContext:
    """What every section may read: inputs, mode, backends, where to write, and shared state.

    Attributes:
        images / manifest / reports / checkpoint: the corpus and the cascade to index with.
        live_index: the project's index (DATA_DIR/index): its live context vectors, when there, are
            the real vectors the scale curves tile (all 7,470 after `make demo`).
        quick: the short run (`make bench`, under 3 minutes).
        backends: text backends to measure: ['embedded'], ['es'] or both.
        es: Elasticsearch settings (the server `make bench` starts), or None.
        out: the run folder (results/bench-<date>-<commit>/).
        index_images: how many images the indexing section indexes (None: all).
        scale_sizes: vector counts of the scale curves.
        scale_vectors: which vector sets the curves use: 'real' (tiled context vectors), 'random'.
        es_max_vectors: largest scale size also loaded into Elasticsearch.
        http_seconds / http_connections: each wrk run's duration and the connection counts.
        http_rounds: passes over every wrk target (figures: the run of median requests/s).
        http_server: the WSGI server `cxrsearch serve --server` runs the web app under (gunicorn, granian, waitress).
        sustained_seconds: the sustained-load run's duration (0: skipped).
        service_rounds: passes over the query set in the service section.
        uploads: POST /api/similar requests per server in the http section.
        fuzz_requests: requests the fuzz section sends at least.
        seed: every sample and query set is drawn from it.
        threads: torch and FAISS (OpenMP) threads in this process.
    """

    images: Path
    manifest: Path | None
    reports: Path | None
    checkpoint: Path | None
    out: Path
    live_index: Path | None = None
    quick: bool = True
    backends: list[str] = field(default_factory=lambda: ["embedded"])
    es: Any = None
    index_images: int | None = 300
    scale_sizes: list[int] = field(default_factory=lambda: [10_000])
    es_max_vectors: int = 1_000_000
    scale_queries: int = 100
    scale_vectors: list[str] = field(default_factory=lambda: ["real", "random"])
    http_seconds: float = 2.0
    http_connections: list[int] = field(default_factory=lambda: [1, 4, 16])
    http_rounds: int = 1
    http_server: str = "gunicorn"
    sustained_seconds: float = 0.0
    service_rounds: int = 20
    uploads: int = 20
    fuzz_requests: int = 10_000
    seed: int = 0
    threads: int = 1
    progress: bool = True
    shared: dict[str, Any] = field(default_factory=dict)
    _tmp: Any = None

    @property
    def work(self) -> Path:
        """A scratch folder for index builds, removed when the run ends."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cxrsearch-bench-")
        return Path(self._tmp.name)

    def cleanup(self) -> None:
        for cleanup in self.shared.pop("cleanups", [])[::-1]:
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - clean-up must not hide the report
                pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def on_cleanup(self, fn) -> None:
        """Run `fn` when the benchmark ends (stop a server, delete an Elasticsearch index)."""
        self.shared.setdefault("cleanups", []).append(fn)
