"""Run the registered benchmark sections in order and write results/bench-<date>-<commit>/ (JSON, markdown, PNGs)."""
from __future__ import annotations

import time
import traceback
from pathlib import Path

from pipelines.bench.report import Report, SectionResult, check_peers, git_commit, load_average
from pipelines.bench.section import SECTIONS, BenchContext, Section

ROOT = Path(__file__).resolve().parents[2]


def section_names() -> list[str]:
    import pipelines.bench.sections  # noqa: F401 (registers them)

    return [s.name for s in SECTIONS]


def run_bench(ctx: BenchContext, results_dir: Path, names: list[str] | None = None,
              log=print) -> tuple[Report, Path]:
    """Run the sections (all registered ones, or `names`) and write the report; returns (report, run folder).

    A section that cannot run here is reported as skipped with its reason; one that raises is
    reported as failed with the error, and the others still run.
    """
    known = section_names()
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"unknown bench sections {unknown}; valid: {', '.join(known)}")
    commit = git_commit(ROOT)
    folder = Path(results_dir) / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{commit}"
    folder.mkdir(parents=True, exist_ok=False)
    ctx.out = folder
    report = Report(commit=commit, quick=ctx.quick, backends=list(ctx.backends),
                    corpus=f"{ctx.images} (SYNTHETIC stand-ins)" if _synthetic(ctx) else str(ctx.images),
                    synthetic=True, threads=ctx.threads)
    started = time.monotonic()
    _set_threads(ctx.threads)
    try:
        for cls in SECTIONS:
            section: Section = cls()
            if names and section.name not in names:
                continue
            if ctx.quick and not section.quick_ok and not names:
                report.add_section(SectionResult(section.name, section.title, "skipped", "not part of --quick"))
                continue
            t0, load0 = time.monotonic(), load_average()
            try:
                reason = section.available(ctx)
                if reason:
                    result = SectionResult(section.name, section.title, "skipped", reason)
                else:
                    log(f"bench: {section.name} ...")
                    result = section.run(ctx)
            except Exception as e:  # a failed section is reported, the others still run
                result = SectionResult(section.name, section.title, "failed", f"{type(e).__name__}: {e}")
                result.notes.append("```\n" + traceback.format_exc(limit=6) + "```")
            result.seconds, result.load_before, result.load_after = time.monotonic() - t0, load0, load_average()
            report.add_section(result)
            log(f"bench: {section.name}: {result.status}{' (' + result.reason + ')' if result.reason else ''}, "
                f"{len(result.figures)} figures, {result.seconds:.1f} s")
    finally:
        ctx.cleanup()
        report.seconds = time.monotonic() - started
        report.load_after = load_average()
        report.write(folder)
    problems = check_peers(report.to_dict())
    if problems:
        raise AssertionError(f"figures without a peer or machine: {problems[:5]}")
    return report, folder


def _set_threads(n: int) -> None:
    """torch and FAISS threads of this process (busy-waiting OpenMP threads distort latencies when oversubscribed)."""
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def _synthetic(ctx: BenchContext) -> bool:
    from pipelines.reindex.stages import is_synthetic_folder

    return is_synthetic_folder(Path(ctx.images))
