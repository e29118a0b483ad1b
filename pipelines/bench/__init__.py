"""The benchmark (`cxrsearch bench`): pluggable sections that measure the system and write one report per run.

- section.py   the Section interface, @register, and the BenchContext every section reads
- report.py    figures (each speed figure with a peer from the same run, or a baseline with its machine),
               section results, the JSON and markdown report
- runner.py    runs the sections in order and writes results/bench-<date>-<commit>/
- sections/    indexing, similar, service (the query service in process), scale, http + sustained, fuzz,
               cascade, search_quality
- server.py    the one way to start the web app (`cxrsearch serve` over a build, its own process group)
- wrk.py       HTTP load with wrk (loopback only): the one runner and the one parser of its output
"""
from pipelines.bench.report import Figure, Report, SectionResult, check_peers
from pipelines.bench.runner import run_bench, section_names
from pipelines.bench.section import BenchContext, Section, register

__all__ = ["BenchContext", "Figure", "Report", "Section", "SectionResult", "check_peers", "register", "run_bench",
           "section_names"]
