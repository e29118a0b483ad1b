"""`cxrsearch reindex --progress-json`, the interface the web app's admin jobs run: JSON lines, and SIGTERM
stops the job between batches with its build kept (a real child process)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.pipelines.test_reindex import SmallCorpus


def command(corpus: SmallCorpus, index, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "reindex", "--progress-json", "--no-progress", "--images",
            str(corpus.images), "--manifest", str(corpus.manifest), "--reports", str(corpus.reports),
            "--index-dir", str(index), *extra]


def test_progress_json_prints_progress_lines_then_the_summary(tmp_path):
    corpus = SmallCorpus(tmp_path / "corpus")
    run = subprocess.run(command(corpus, tmp_path / "index", "--batch-size", "8"), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]  # every stdout line is JSON
    progress = [m["progress"] for m in lines if "progress" in m]
    assert progress and progress[-1]["done"] == progress[-1]["total"] and progress[-1]["indexed"] == 24
    assert set(progress[0]) == {"phase", "version", "done", "total", "indexed", "unchanged", "skipped", "failed",
                                "elapsed_s"}
    summary = lines[-1]["summary"]
    assert summary["indexed"] == 24 and summary["switched"] is True


def test_sigterm_stops_after_the_current_batch_and_the_build_resumes(tmp_path):
    corpus = SmallCorpus(tmp_path / "corpus")
    index = tmp_path / "index"
    proc = subprocess.Popen(command(corpus, index, "--batch-size", "1"), stdout=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())  # the job is running: a progress line came
    assert "progress" in first
    proc.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=120) == 3
    assert "cancelled" in rest[-1] and "resumes" in rest[-1]["cancelled"]
    again = subprocess.run(command(corpus, index), capture_output=True, text=True, timeout=300)
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["resumed"] > 0 and summary["switched"] is True


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return False


def test_the_command_stops_when_the_program_that_started_it_dies(tmp_path):
    """A killed web worker must not leave a reindex running unwatched beside the next job."""
    import time

    corpus = SmallCorpus(tmp_path / "corpus")
    starter = ("import subprocess, sys\n"
               f"p = subprocess.Popen({command(corpus, tmp_path / 'index', '--batch-size', '1')!r}, "
               "stdout=subprocess.PIPE, text=True)\n"
               "print(p.pid, flush=True)\n"
               "print(p.stdout.readline(), end='', flush=True)\n"
               "import time; time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert "progress" in json.loads(parent.stdout.readline())  # the reindex is running
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child), "the reindex kept running after its parent died"
    again = subprocess.run(command(corpus, tmp_path / "index"), capture_output=True, text=True, timeout=300)
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["resumed"] > 0  # it stopped part-way (not by finishing), and its build resumes
