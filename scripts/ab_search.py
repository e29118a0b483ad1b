"""A/B of the app's CPU per new search between two versions of the code, for a machine whose speed drifts.

    .venv/bin/python scripts/ab_search.py --index-dir data/index                 # HEAD vs the working tree
    .venv/bin/python scripts/ab_search.py --index-dir data/index --a HEAD~3 --b HEAD --rounds 5

Each version runs in its own process: the Flask app (`create_app` + `warm_up`, the answer cache on, as
`cxrsearch serve` runs it) over the same embedded index, called through WSGI without a server. The two
processes answer the bench's 2,000 distinct queries (`pipelines.bench.sections.http.distinct_queries`;
more than the answer cache holds, so every answer is computed) in alternating batches (default 50
searches), the same queries on both sides, so a drift of the machine falls on both alike; each prints
its process CPU time per search. On the 2-core build VM two runs of the same code differed by 1-1.5% a
round, while the absolute figure drifted by up to 40% within minutes: compare the ratio, not the us.

A revision (`--a`/`--b` other than `worktree`) is exported with `git archive` into a temporary folder; the
working tree is used as it is. Both run on this checkout's virtual environment.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import io, os, sys, time
sys.path.insert(0, os.environ["AB_TREE"])
from urllib.parse import quote
from pipelines.bench.sections.http import DISTINCT_QUERIES, distinct_queries
from search_web.app import create_app, warm_up

app = warm_up(create_app({"BACKEND": "embedded", "INDEX_DIR": os.environ["AB_INDEX"],
                          "CHECKPOINT": os.environ["AB_CHECKPOINT"] or "none"}))
targets = [f"q={quote(q)}&k=10" for q in distinct_queries(DISTINCT_QUERIES, 0)]


def call(query_string):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/search", "QUERY_STRING": query_string,
               "RAW_URI": "/api/search?" + query_string, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
               "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
    status = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"/api/search?{query_string} answered {status[0]}: {body[:300]!r}")


print("ready", flush=True)
for line in sys.stdin:
    start, count = map(int, line.split())
    t = time.process_time()
    for i in range(start, start + count):
        call(targets[i % len(targets)])
    print(time.process_time() - t, flush=True)
"""


def export(rev: str, into: Path) -> Path:
    """The tree of a git revision, extracted under `into`."""
    archive = into / "tree.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=out, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def start(tree: Path, args) -> subprocess.Popen:
    env = {**os.environ, "AB_TREE": str(tree), "AB_INDEX": str(Path(args.index_dir).resolve()),
           "AB_CHECKPOINT": str(Path(args.checkpoint).resolve()) if args.checkpoint else ""}
    proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd=tree)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker of {tree} did not start (exit {proc.wait()})")
    return proc


def ask(proc: subprocess.Popen, start_at: int, count: int) -> float:
    proc.stdin.write(f"{start_at} {count}\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a worker ended early (exit {proc.wait()})")
    return float(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index-dir", required=True, help="an embedded index (`cxrsearch reindex`'s --index-dir)")
    parser.add_argument("--checkpoint", default=str(ROOT / "data/models/tiny/cascade.pt"),
                        help="cascade checkpoint for the vector retriever ('' for none)")
    parser.add_argument("--a", default="HEAD", help="revision A (default HEAD; 'worktree': the working tree)")
    parser.add_argument("--b", default="worktree", help="revision B (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50, help="searches per turn")
    parser.add_argument("--searches", type=int, default=6000, help="searches per version per round")
    args = parser.parse_args(argv)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        args.checkpoint = ""
    with tempfile.TemporaryDirectory(prefix="cxrsearch-ab-") as tmp:
        trees = []
        for name, rev in (("a", args.a), ("b", args.b)):
            if rev == "worktree":
                trees.append(ROOT)
            else:
                (Path(tmp) / name).mkdir()
                trees.append(export(rev, Path(tmp) / name))
        procs = [start(tree, args) for tree in trees]
        try:
            for proc in procs:      # warm-up: every query once
                ask(proc, 0, 2000)
            at, ratios = 2000, []
            for r in range(args.rounds):
                spent = [0.0, 0.0]
                for turn in range(args.searches // args.batch):
                    order = (0, 1) if turn % 2 == 0 else (1, 0)
                    for side in order:
                        spent[side] += ask(procs[side], at, args.batch)
                    at += args.batch
                done = args.searches // args.batch * args.batch
                a_us, b_us = (s / done * 1e6 for s in spent)
                ratios.append(b_us / a_us)
                print(f"round {r + 1}: A ({args.a}) {a_us:.0f} us, B ({args.b}) {b_us:.0f} us of CPU per search; "
                      f"B/A {b_us / a_us:.3f}", flush=True)
            print(f"B/A median {statistics.median(ratios):.3f} over {args.rounds} rounds")
        finally:
            for proc in procs:
                proc.stdin.close()
                proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
