"""How a web job reads the reindex command's outcome, with stand-in commands (real child processes): a summary
with failed images still succeeds, junk lines are skipped, cancel before or during start-up reads as
cancelled, a failure keeps the command's own words, and the child never outlives an error."""
from __future__ import annotations

import sys
import threading
import time

import pytest

from search_web import jobs

CONFIG = {"BACKEND": "embedded", "DATA_DIR": "/nowhere", "IMAGES_DIR": "/nowhere", "INDEX_DIR": "/nowhere"}


def fake(monkeypatch, script: str) -> None:
    monkeypatch.setattr(jobs, "reindex_command", lambda *a: [sys.executable, "-c", script])


def run(cancel: threading.Event | None = None, progress=None):
    seen = []
    result = jobs._reindex(CONFIG, {"with_model": False}, None, progress or seen.append, cancel or threading.Event())
    return result, seen


def test_a_summary_with_failed_images_is_a_result_not_a_failure(monkeypatch):
    fake(monkeypatch, "import json, sys\n"
                      "print('not json'); print('null'); print('[1, 2]')\n"
                      "print(json.dumps({'progress': {'phase': 'indexing', 'version': 'v', 'done': 2, 'total': 4, "
                      "'indexed': 2, 'unchanged': 0, 'skipped': 0, 'failed': 1, 'elapsed_s': 0.5}}))\n"
                      "print(json.dumps({'summary': {'indexed': 3, 'failed': {'unreadable': 1}}}))\n"
                      "sys.exit(1)\n")
    summary, seen = run()
    assert summary == {"indexed": 3, "failed": {"unreadable": 1}}
    assert len(seen) == 1 and seen[0].done == 2 and seen[0].rate == 4.0


def test_a_failure_keeps_the_commands_words(monkeypatch):
    fake(monkeypatch, "import sys; print('cxrsearch reindex: error: no images in /nowhere', file=sys.stderr); "
                      "sys.exit(1)")
    with pytest.raises(jobs.ReindexFailed, match="exited with 1: cxrsearch reindex: error: no images in /nowhere"):
        run()


def test_cancel_before_start_and_during_start_up_read_as_cancelled(monkeypatch):
    fake(monkeypatch, "import time; time.sleep(30)")  # never installs a SIGTERM handler: dies of the signal
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(jobs.ReindexCancelled, match="before it started"):
        run(cancel)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(jobs.ReindexCancelled):
        run(cancel)
    assert time.monotonic() - started < 20


def test_the_child_never_outlives_an_error_in_the_job(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    fake(monkeypatch, "import json, os, time\n"
                      f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                      "print(json.dumps({'progress': {'phase': 'indexing', 'version': 'v', 'done': 1, 'total': 9, "
                      "'indexed': 1, 'unchanged': 0, 'skipped': 0, 'failed': 0, 'elapsed_s': 0.1}}), flush=True)\n"
                      "time.sleep(60)\n")

    def broken_progress(p):
        raise OSError("disk full")  # writing the job's state failed

    with pytest.raises(OSError, match="disk full"):
        run(progress=broken_progress)
    pid = int(pid_file.read_text())
    try:
        with open(f"/proc/{pid}/status") as fh:
            state = next(line for line in fh if line.startswith("State:"))
        assert "Z" in state  # at most a zombie being reaped, never running
    except FileNotFoundError:
        pass  # gone: waited for
