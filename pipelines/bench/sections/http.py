"""Bench sections: search over HTTP with wrk (the API vs Elasticsearch's bare _search and kNN), upload, sustained load.

The http section starts the web app (`pipelines.bench.server.start_app`: `cxrsearch serve`, gunicorn or the
server given with `--http-server`)
over the indexing section's builds and loads it with wrk at each connection count, beside
Elasticsearch's own bare `_search` (BM25, alone and with the total and the API's facets) and bare
kNN on the same documents and vectors; then `POST /api/similar` by upload, one client, beside the
in-process upload path of the similar section. Issue 9's targets are marked on their figures.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

from pipelines.bench.report import COUNT, SIZE, SPEED, Figure, SectionResult, Target
from pipelines.bench.section import BenchContext, Section, register
from pipelines.bench.server import AppServer, rss_mib, start_app
from pipelines.bench.wrk import WrkResult, ensure_wrk, run_wrk

QUERIES = ("calcified granuloma", "cardiomegaly", "pleural effusion right", "opacity lung base", "normal chest",
           "pulmonary disease upper lobe", "nodule left", "degenerative spine")
DISTINCT_QUERIES = 2000  # more than the API's answer cache holds (512 per worker): every answer is computed
P99_LIMIT_MS = 200.0
UPLOAD_TARGET_MS = 100.0  # issue 9: similar-by-upload p50 at one client
LABELS = {"api_search_embedded": "API /api/search, embedded (SQLite FTS5)",
          "api_search_embedded_distinct": f"API /api/search, embedded, {DISTINCT_QUERIES:,} distinct queries",
          "es_search_distinct": f"Elasticsearch bare _search (BM25), {DISTINCT_QUERIES:,} distinct queries",
          "api_search_es": "API /api/search, Elasticsearch", "es_search": "Elasticsearch bare _search (BM25)",
          "es_search_facets": "Elasticsearch bare _search (BM25) + total + the API's facets",
          "api_similar_faiss": "API /api/images/ID/similar, FAISS",
          "api_similar_es": "API /api/images/ID/similar, ES kNN",
          "es_knn": "Elasticsearch bare kNN _search"}


def distinct_queries(n: int, seed: int) -> list[str]:
    """`n` different queries a radiologist might type: a finding of the lexicon, with or without a place, a side
    and a severity ("pleural effusion lower lobe left mild"), in a seeded random order."""
    from indexer.lexicon import LEXICON_FILE

    lexicon = json.loads(LEXICON_FILE.read_text(encoding="utf-8"))
    findings = sorted({f["phrases"][0] for f in lexicon["findings"] if f.get("phrases")})
    modifiers: dict[str, list[str]] = {"location": [], "laterality": [], "severity": []}
    for m in lexicon["modifiers"]:
        kind = next(k for k in modifiers if k in m)
        if m[kind] not in modifiers[kind]:
            modifiers[kind].append(m[kind])
    queries = sorted({" ".join(w for w in (f, place, side, severity) if w)
                      for f in findings for place in ["", *modifiers["location"]]
                      for side in ["", *modifiers["laterality"]] for severity in ["", *modifiers["severity"]]})
    if len(queries) < n:
        raise RuntimeError(f"the lexicon makes only {len(queries)} distinct queries; {n} asked for")
    rng = np.random.default_rng(seed)
    return [queries[i] for i in rng.choice(len(queries), size=n, replace=False)]


def median_run(runs: list[WrkResult]) -> WrkResult:
    """The run of median requests/s (the lower middle one of an even count): all of its figures come from one
    run, so its p50 and its requests/s describe the same minutes of the machine."""
    return sorted(runs, key=lambda r: r.rps)[(len(runs) - 1) // 2]


def warmup_seconds(http_seconds: float) -> float:
    """Length of the discarded run before each target's measured runs: a third of a run, 1 to 3 s."""
    return float(min(3.0, max(1.0, round(http_seconds / 3))))


def bm25_body(query: str, facets: bool = False) -> str:
    """The BM25 query the Elasticsearch text backend's plain search sends, bare: size 10, no concepts, no
    explanation; with `facets`, also the exact total and the terms aggregations the API answers with."""
    from indexer.documents import DEFAULT_FACETS, TEXT_FIELDS

    should = [{"match": {name: {"query": query, "boost": weight}}} for name, (_, weight) in TEXT_FIELDS.items()]
    body: dict = {"query": {"bool": {"should": should, "minimum_should_match": 1}}, "size": 10}
    if facets:
        body["track_total_hits"] = True
        body["aggs"] = {name: {"terms": {"field": name, "size": 20}} for name in DEFAULT_FACETS}
    return json.dumps(body)


def check_answers(base_url: str, request: tuple, label: str) -> None:
    """One request of a target before loading it: anything but 200 stops the section, naming the target."""
    import requests

    method, path, headers, body = request
    r = requests.request(method, base_url + path, headers=headers, data=body, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"{label}: {method} {path} answered {r.status_code} ({r.text[:200]}); "
                           "a load test of errors would measure nothing")


LABELS_VECTORS = {"embedded": "FAISS", "es": "ES kNN"}


def servers_text(servers: dict[str, AppServer], http_server: str) -> str:
    from pipelines.bench.server import WORKERS, threads_text

    return "; ".join(f"{name}: {WORKERS} workers x {threads_text(http_server, server.backend)}"
                     for name, server in servers.items())


def upload_times(server: AppServer, images: list[Path], n: int) -> list[float]:
    """Seconds of `n` POST /api/similar (multipart `image`, k = 10, kind = context) by one client, rotating over
    `images`, after one warm-up request (which loads the cascade in the worker)."""
    import requests

    session = requests.Session()
    times = []
    for i in range(n + 1):
        image = images[i % len(images)]
        data = image.read_bytes()
        t = time.perf_counter()
        r = session.post(server.url + "/api/similar", files={"image": (image.name, data, "image/png")},
                         data={"k": "10", "kind": "context"}, timeout=60)   # as the in-process peer
        elapsed = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"POST /api/similar ({server.backend}) answered {r.status_code}: {r.text[:300]}")
        if i:
            times.append(elapsed)
    return times


@register
class Http(Section):
    name = "http"
    title = "Search over HTTP (wrk): the API vs Elasticsearch's bare _search and kNN"

    def available(self, ctx: BenchContext) -> str | None:
        if not ctx.shared.get("builds"):
            return "needs the indexing section's builds (it was skipped or failed)"
        ensure_wrk()  # installs it (root) or raises naming it: a missing wrk fails the run, never skips silently
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        from pipelines.bench.sections.similar import open_build

        result = SectionResult(self.name, self.title)
        builds = ctx.shared["builds"]
        rng = np.random.default_rng(ctx.seed)
        targets: dict[str, tuple[str, list]] = {}  # name -> (base URL, requests)
        servers: dict[str, AppServer] = ctx.shared.setdefault("servers", {})
        search_paths = [("GET", f"/api/search?q={quote(q)}&k=10", None, None) for q in QUERIES]
        distinct = distinct_queries(DISTINCT_QUERIES, ctx.seed)
        distinct_paths = [("GET", f"/api/search?q={quote(q)}&k=10", None, None) for q in distinct]
        vectors_build = builds.get("es_es") or builds.get("embedded_faiss") or builds.get("es_faiss")
        backend, live = open_build(vectors_build)
        version, store = live.get("context")
        ids = sorted(store.image_ids())
        picked = [ids[i] for i in rng.choice(len(ids), size=min(20, len(ids)), replace=False)]
        # kind=context: the peer is bare kNN over the context vectors
        similar_paths = [("GET", f"/api/images/{i}/similar?k=10&kind=context", None, None) for i in picked]
        if "embedded_faiss" in builds:
            servers["embedded"] = start_app(ctx, builds["embedded_faiss"], name="embedded")
            targets["api_search_embedded"] = (servers["embedded"].url, search_paths)
            targets["api_search_embedded_distinct"] = (servers["embedded"].url, distinct_paths)
            targets["api_similar_faiss"] = (servers["embedded"].url, similar_paths)
        if "es_es" in builds:
            build = builds["es_es"]
            servers["es"] = start_app(ctx, build, name="es")
            targets["api_search_es"] = (servers["es"].url, search_paths)
            targets["api_similar_es"] = (servers["es"].url, similar_paths)
            es_url = build["es"].url.rstrip("/")
            alias = build["es"].index
            json_headers = {"Content-Type": "application/json"}
            targets["es_search"] = (es_url, [("POST", f"/{alias}/_search", json_headers, bm25_body(q))
                                             for q in QUERIES])
            targets["es_search_facets"] = (es_url, [("POST", f"/{alias}/_search", json_headers,
                                                     bm25_body(q, facets=True)) for q in QUERIES])
            targets["es_search_distinct"] = (es_url, [("POST", f"/{alias}/_search", json_headers, bm25_body(q))
                                                      for q in distinct])
            from indexer.vectors.es_knn import FIELD, knn_index_name

            knn_index = knn_index_name(alias, "context_vector", build["version"])
            bodies = [json.dumps({"knn": {"field": FIELD, "query_vector": [round(float(v), 6) for v in vec], "k": 11,
                                          "num_candidates": 110}, "size": 11, "_source": False})
                      for vec in store.get_vectors(picked)]
            targets["es_knn"] = (es_url, [("POST", f"/{knn_index}/_search", json_headers, b) for b in bodies])
        backend.close()
        search_peer = "es_search" if "es_search" in targets else "api_search_embedded"
        distinct_peer = "es_search_distinct" if "es_search_distinct" in targets else "api_search_embedded_distinct"
        similar_peer = "es_knn" if "es_knn" in targets else "api_similar_faiss"
        measured: dict[str, list[WrkResult]] = {}
        rows = []
        order = [t for t in ("es_search", "es_search_facets", "api_search_embedded", "api_search_es",
                             "es_search_distinct", "api_search_embedded_distinct", "es_knn",
                             "api_similar_faiss", "api_similar_es") if t in targets]
        lowest, highest = min(ctx.http_connections), max(ctx.http_connections)
        warmup = warmup_seconds(ctx.http_seconds)
        runs: dict[tuple[str, int], list[WrkResult]] = {}
        for round_no in range(ctx.http_rounds):  # later rounds: every target again, in the same order
            for name in order:
                url, requests = targets[name]
                if round_no == 0:
                    check_answers(url, requests[0], LABELS[name])
                    # a discarded run first, so that no target is measured cold (a JVM that has not compiled its
                    # query path, a worker that has not loaded its ranker): the first target measured after
                    # indexing ran 1.8x slower at one connection than the same server a minute later
                    # (run bench-20261201-083412)
                    w = run_wrk(url, requests, highest, warmup, ctx.work)
                    rows.append([LABELS[name], f"warm-up {highest} (discarded)", round(w.rps, 1), round(w.p50_ms, 2),
                                 round(w.p95_ms, 2), round(w.p99_ms, 2), w.errors])
                for c in ctx.http_connections:
                    r = run_wrk(url, requests, c, ctx.http_seconds, ctx.work)
                    runs.setdefault((name, c), []).append(r)
                    label = c if ctx.http_rounds == 1 else f"{c} (round {round_no + 1})"
                    rows.append([LABELS[name], label, round(r.rps, 1), round(r.p50_ms, 2), round(r.p95_ms, 2),
                                 round(r.p99_ms, 2), r.errors])
        for name in order:
            peer = (distinct_peer if name.endswith("_distinct") else search_peer) if "search" in name else similar_peer
            for c in ctx.http_connections:
                r = median_run(runs[(name, c)])
                measured.setdefault(name, []).append(r)
                base = f"http.{name}.c{c}"
                is_peer = name == peer
                metrics = (("rps", r.rps, "requests/s", True), ("p50_ms", r.p50_ms, "ms", False),
                           ("p95_ms", r.p95_ms, "ms", False), ("p99_ms", r.p99_ms, "ms", False))
                for metric, value, unit, better in metrics:
                    figure = Figure(f"{base}.{metric}", f"{LABELS[name]}, {c} conn: {metric.replace('_ms', '')}",
                                    value, unit, SPEED, peer=None if is_peer else f"http.{peer}.c{c}.{metric}",
                                    baseline=is_peer, higher_is_better=better)
                    if name == "api_search_embedded" and peer == "es_search":  # issue 9, against bare _search
                        if metric == "rps" and c == highest and c >= 16:
                            figure.target = Target(1.0, "ratio", "issue 9")
                        elif metric == "p50_ms" and c == lowest == 1:
                            figure.target = Target(1.0, "ratio", "issue 9")
                    result.add(figure)
                errors = sum(x.errors for x in runs[(name, c)])
                result.add(Figure(f"{base}.errors", f"{LABELS[name]}, {c} conn: errors", errors, "requests", COUNT))
        ctx.shared["http"] = measured
        result.table("wrk runs", ["target", "connections", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)
        uploads = self._uploads(ctx, result, servers, builds)
        rounds = ("" if ctx.http_rounds == 1 else
                  f"{ctx.http_rounds} rounds over every target in turn, each figure from the run of median "
                  "requests/s of its target and connection count (errors: all runs); ")
        result.notes.append(
            f"wrk on loopback, {rounds}{ctx.http_seconds:g} s per run after a discarded warm-up run of {warmup:g} s "
            f"at {highest} connections per target, threads = min(connections, cores), each thread starting "
            f"at its own place in the rotation; search rotates {len(QUERIES)} queries (repeated: after its second "
            "time each is answered from the API's answer cache, as a repeated search is), and separately "
            f"{DISTINCT_QUERIES:,} distinct queries (finding x place x side x severity from the lexicon; more than "
            "the cache holds, so every API answer is computed); similar rotates "
            f"{len(picked)} image ids (k = 10). The API runs `cxrsearch serve` "
            f"({ctx.http_server}; {servers_text(servers, ctx.http_server)}) in its own process group over the "
            "indexing section's builds "
            f"({len(ids)} images); the bare Elasticsearch peers are the same documents and vectors, queried without "
            "the API's concepts, negation, vectors, documents and explanations. Ratios: vs the bare Elasticsearch "
            f"query (BM25, or kNN) at the same connection count. {uploads}")
        result.plots.append(self._plot(ctx, measured, LABELS))
        return result

    def _uploads(self, ctx: BenchContext, result: SectionResult, servers: dict[str, AppServer], builds) -> str:
        """POST /api/similar by upload, one client, on each server: p50/p95, peer the in-process upload path."""
        n = ctx.uploads
        images = sorted(Path(next(iter(builds.values()))["images"]).glob("*.png"))[:25]
        if not images:
            return "No images to upload."
        peer = ctx.shared.get("upload_figure")  # the similar section's in-process upload p50, when it ran
        for name, server in servers.items():
            times = upload_times(server, images, n)
            p50, p95 = (float(np.percentile(np.asarray(times) * 1000, q)) for q in (50, 95))
            label = f"POST /api/similar by upload ({name} text, {LABELS_VECTORS[name]}), 1 client"
            fid = f"http.upload_{name}.p50_ms"
            result.add(Figure(fid, f"{label}: p50", p50, "ms", SPEED, peer=peer, baseline=peer is None,
                              target=Target(UPLOAD_TARGET_MS, "value", "issue 9")))
            result.add(Figure(f"http.upload_{name}.p95_ms", f"{label}: p95", p95, "ms", SPEED, peer=fid))
        return (f"Uploads: {n} requests per server, one client, rotating {len(images)} PNGs of the corpus (multipart "
                "field `image`, k = 10; decode, the cascade and the vector search in the server), after one warm-up "
                "request; the peer is the same work in process (the similar section's upload figure).")

    def _plot(self, ctx, measured, labels) -> str:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for name, runs in measured.items():
            conns = [r.connections for r in runs]
            left.plot(conns, [r.rps for r in runs], marker="o", label=labels[name])
            right.plot(conns, [r.p99_ms for r in runs], marker="o", label=labels[name])
        for ax, ylabel in ((left, "requests/s"), (right, "p99 latency (ms)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("connections")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
        right.set_yscale("log")
        left.legend(fontsize=7)
        fig.suptitle("search over HTTP, wrk on loopback (SYNTHETIC corpus; this machine)")
        fig.tight_layout()
        fig.savefig(ctx.out / "http.png", dpi=100)
        plt.close(fig)
        return "http.png"


@register
class Sustained(Section):
    name = "sustained"
    title = f"Sustained load on the embedded backend (highest connection count with p99 < {P99_LIMIT_MS:g} ms)"

    def available(self, ctx: BenchContext) -> str | None:
        if ctx.sustained_seconds <= 0:
            return "not asked for (--sustained-seconds 0)"
        if ("embedded" not in ctx.shared.get("servers", {})
                or "api_search_embedded_distinct" not in ctx.shared.get("http", {})):
            return "needs the http section's embedded API server (it was skipped or failed)"
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        result = SectionResult(self.name, self.title)
        server = ctx.shared["servers"]["embedded"]
        runs = ctx.shared["http"]["api_search_embedded_distinct"]
        held = [r for r in runs if r.p99_ms < P99_LIMIT_MS and r.errors == 0]
        chosen = max(held, key=lambda r: r.rps) if held else min(runs, key=lambda r: r.connections)
        rss_before = rss_mib(server.pid)
        paths = [("GET", f"/api/search?q={quote(q)}&k=10", None, None)
                 for q in distinct_queries(DISTINCT_QUERIES, ctx.seed + 1)]
        r = run_wrk(server.url, paths, chosen.connections, ctx.sustained_seconds, ctx.work)
        rss_after = rss_mib(server.pid)
        c = chosen.connections
        result.add(Figure("sustained.rps", f"{ctx.sustained_seconds:g} s at {c} connections: requests/s", r.rps,
                          "requests/s", SPEED, peer=f"http.api_search_embedded_distinct.c{c}.rps",
                          higher_is_better=True))
        result.add(Figure("sustained.p99_ms", f"{ctx.sustained_seconds:g} s at {c} connections: p99", r.p99_ms, "ms",
                          SPEED, peer=f"http.api_search_embedded_distinct.c{c}.p99_ms"))
        result.add(Figure("sustained.errors", "errors (must be 0)", r.errors, "requests", COUNT))
        result.add(Figure("sustained.requests", "requests served", r.requests, "requests", COUNT))
        if rss_before is not None and rss_after is not None:
            result.add(Figure("sustained.rss_growth_mib", f"server memory growth (RSS of all its processes "
                              f"{rss_before:.0f} -> "
                              f"{rss_after:.0f} MiB)", rss_after - rss_before, "MiB", SIZE))
        result.notes.append(
            f"wrk holds {c} connections (closed loop: the highest count whose p99 stayed under {P99_LIMIT_MS:g} ms "
            "in the http section's distinct-query runs; wrk cannot hold a fixed rate) for the whole run, against the "
            f"same server, rotating another {DISTINCT_QUERIES:,} distinct queries (every answer computed, and the "
            "answer cache filled to its bound: the memory growth includes it).")
        if r.p99_ms >= P99_LIMIT_MS or r.errors:
            result.notes.append(f"**not held**: p99 {r.p99_ms:.1f} ms, {r.errors} errors")
        return result
