"""Bench section: fuzz the JSON API with schemathesis from its OpenAPI document; count requests and 5xx answers.

Issue 11 asks for at least 10,000 requests generated from `/api/openapi.json` against the app on the
embedded backend over a small corpus, with no answer in the 5xx range. This section indexes a small
corpus of its own (so it runs alone: `--sections fuzz`) on each backend of the run (embedded, and
Elasticsearch with its kNN vectors under `--backend both`), starts the app (`pipelines.bench.server`),
and runs `schemathesis run` (its coverage, fuzzing and stateful phases, the `not_a_server_error`
check) round after round, one seed each, until the server has answered the number of requests
asked for. The counts come from the server itself (`/metrics`: requests by endpoint and status,
summed over gunicorn's workers), beside schemathesis' own test-case count and failures. Admin
endpoints are fuzzed without a token (the app runs with admin off: 401/403 answers); a fuzzer
holding the token would start real reindex jobs. Full runs only (not `--quick`).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from pipelines.bench.report import COUNT, SPEED, Figure, SectionResult
from pipelines.bench.section import BenchContext, Section, register

FUZZ_IMAGES = 60           # images of the fuzzing corpus
EXAMPLES_PER_ROUND = 200   # schemathesis --max-examples per operation and round
_METRIC = re.compile(r'^cxrsearch_http_requests_total'
                     r'\{endpoint="([^"]*)",method="([^"]*)",status="(\d+)"\} ([0-9.e+]+)$')


def served(base_url: str) -> Counter:
    """Requests the app has answered so far, by (endpoint, method, status), from its /metrics."""
    import requests

    text = requests.get(base_url + "/metrics", timeout=30).text
    out: Counter = Counter()
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out[(m.group(1), m.group(2), int(m.group(3)))] += int(float(m.group(4)))
    return out


def run_schemathesis(base_url: str, seed: int, examples: int, workdir: Path, timeout_s: float) -> dict:
    """One `schemathesis run` against the app's OpenAPI document; returns its JSON run report (with `log_tail`)."""
    report_dir = workdir / f"schemathesis-{seed}"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", base_url + "/api/openapi.json", "--checks",
           "not_a_server_error", "--max-examples", str(examples), "--seed", str(seed), "--workers", "2",
           "--generation-database", "none", "--no-color", "--report", "json", "--report-dir", str(report_dir),
           "--request-timeout", "30"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=timeout_s)
    reports = sorted(report_dir.glob("*.json"))
    if not reports:
        raise RuntimeError(f"schemathesis wrote no report (exit {proc.returncode}): "
                           f"{(proc.stdout + proc.stderr)[-1500:]}")
    report = json.loads(reports[-1].read_text(encoding="utf-8"))
    report["log_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return report


@register
class Fuzz(Section):
    name = "fuzz"
    title = "Fuzzing the JSON API from its OpenAPI document (schemathesis): requests, 5xx answers"
    quick_ok = False

    def available(self, ctx: BenchContext) -> str | None:
        import importlib.util

        # schemathesis runs as a tool (python -m schemathesis.cli), never imported
        if importlib.util.find_spec("schemathesis") is None:
            return "schemathesis is not installed (it is in the dev extra: pip install -e '.[dev]')"
        if ctx.checkpoint is None or not Path(ctx.checkpoint).is_file():
            return f"no cascade checkpoint at {ctx.checkpoint} to index the fuzzing corpus with"
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        result = SectionResult(self.name, self.title)
        for backend in ctx.backends:  # the embedded backend, and Elasticsearch when the run measures it
            self._fuzz(ctx, result, backend)
        result.notes.append(
            f"Each backend: rounds of `schemathesis run` (coverage, fuzzing and stateful phases, --max-examples "
            f"{EXAMPLES_PER_ROUND} per operation, one seed per round from {ctx.seed}, check not_a_server_error) "
            f"against `cxrsearch serve` over {FUZZ_IMAGES} images of the synthetic corpus indexed for this section "
            "(text and vectors), until the server has answered at least "
            f"{ctx.fuzz_requests:,} requests. Admin endpoints without a token (admin off: 401/403).")
        return result

    def _fuzz(self, ctx: BenchContext, result: SectionResult, backend: str) -> None:
        from pipelines.bench.server import start_app

        build = self._corpus(ctx, backend)
        server = start_app(ctx, build, name=f"fuzz-{backend}")
        before = served(server.url)
        started = time.monotonic()
        rounds, cases, failures, logs, total = 0, 0, [], [], 0
        while total < ctx.fuzz_requests:
            report = run_schemathesis(server.url, ctx.seed + rounds, EXAMPLES_PER_ROUND, ctx.work,
                                      timeout_s=max(600.0, ctx.fuzz_requests / 5))
            rounds += 1
            cases += int(report.get("test_cases", {}).get("generated", 0))
            failures += report.get("failures", []) + report.get("errors", [])
            if report.get("failures") or report.get("errors"):
                logs.append(report["log_tail"])
            now = served(server.url) - before
            grown = sum(now.values())
            if ctx.progress:
                print(f"bench: fuzz {backend}: round {rounds}: {grown} requests served, "
                      f"{sum(n for k, n in now.items() if k[2] >= 500)} with 5xx", file=sys.stderr)
            if grown <= total:
                raise RuntimeError(f"schemathesis round {rounds} sent no request: {report['log_tail'][-800:]}")
            total = grown
        seconds = time.monotonic() - started
        answered = served(server.url) - before
        server.stop()
        fives = {k: n for k, n in answered.items() if k[2] >= 500}
        label = f"{backend} backend"
        result.add(Figure(f"fuzz.{backend}.requests", f"{label}: requests the app answered (from /metrics)",
                          sum(answered.values()), "requests", COUNT))
        result.add(Figure(f"fuzz.{backend}.server_errors", f"{label}: answers with a 5xx status (must be 0)",
                          sum(fives.values()), "requests", COUNT))
        result.add(Figure(f"fuzz.{backend}.test_cases", f"{label}: schemathesis test cases", cases, "cases", COUNT))
        result.add(Figure(f"fuzz.{backend}.failures", f"{label}: schemathesis failures and errors (must be 0)",
                          len(failures), "failures", COUNT))
        result.add(Figure(f"fuzz.{backend}.requests_per_s", f"{label}: fuzzing rate (schemathesis, 2 workers)",
                          sum(answered.values()) / seconds if seconds else None, "requests/s", SPEED, baseline=True,
                          higher_is_better=True))
        rows = [[endpoint, method, status, n] for (endpoint, method, status), n in sorted(answered.items())]
        result.table(f"{label}: answers by endpoint and status ({rounds} rounds, {seconds:.0f} s)",
                     ["endpoint", "method", "status", "requests"], rows)
        if fives or failures:
            result.notes.append(f"**{label}: 5xx answers or failures:** " + json.dumps(
                {"5xx": {f"{m} {e} {s}": n for (e, m, s), n in fives.items()}, "failures": failures[:5]},
                default=str)[:3000] + "\n\n```\n" + "\n".join(logs)[-3000:] + "\n```")

    def _corpus(self, ctx: BenchContext, backend: str) -> dict:
        """A small index (text and vectors) of the first FUZZ_IMAGES images on `backend`, built for this section."""
        import os
        import shutil
        from dataclasses import replace

        from pipelines.annotator import load_annotator
        from pipelines.bench.sections.indexing import es_alias
        from pipelines.reindex import ReindexConfig, run_reindex
        from pipelines.reindex.stages import list_images

        folder = ctx.work / "fuzz-images"
        if not folder.exists():
            folder.mkdir(parents=True)
            for _, path in list_images(ctx.images)[:FUZZ_IMAGES]:
                os.symlink(path.resolve(), folder / path.name)
            marker = Path(ctx.images) / "SYNTHETIC.json"
            if marker.is_file():
                shutil.copy(marker, folder / marker.name)
        es = replace(ctx.es, index=es_alias(ctx) + "-fuzz") if backend == "es" else None
        config = ReindexConfig(images=folder, index_dir=ctx.work / f"index-fuzz-{backend}", backend=backend, es=es,
                               vector_backend="es" if backend == "es" else "faiss", manifest=ctx.manifest,
                               reports=ctx.reports, progress_bar=ctx.progress)
        run_reindex(config, annotator=load_annotator(ctx.checkpoint))
        return {"backend": backend, "index_dir": config.index_dir, "es": config.es}
