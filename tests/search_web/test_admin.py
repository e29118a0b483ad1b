"""Admin: POST /api/reindex behind the token, job state readable by any worker, one job at a time, live page."""
from __future__ import annotations

import re
import threading
import time

import pytest

from search_web import create_app
from search_web.jobs import JobStore
from tests.search_web.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class SlowRunner:
    """A stand-in for ReindexJob that reports progress and waits until released.

    The real job runs in the browser test.
    """

    def __init__(self, fail: bool = False):
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, config, options, checkpoint, progress, cancel):
        from pipelines.reindex import ReindexProgress

        for done in range(1, 4):
            progress(ReindexProgress("indexing", "v1", done, 3, indexed=done, elapsed_s=0.1 * done))
        self.release.wait(10)
        if cancel.is_set():
            from pipelines.reindex import ReindexCancelled

            raise ReindexCancelled("reindex cancelled; build v1 is kept and resumes on the next run")
        if self.fail:
            raise RuntimeError("disk full")
        return {"indexed": 3, "unchanged": 0, "live_version": "v1", "options": options,
                "checkpoint": str(checkpoint) if checkpoint else None}


@pytest.fixture
def admin_app(index_dir, tmp_path):
    import shutil

    root = tmp_path / "index"
    shutil.copytree(index_dir, root)
    runner = SlowRunner()
    app = create_app({"TESTING": True, "INDEX_DIR": str(root), "DATA_DIR": str(tmp_path), "ADMIN_TOKEN": ADMIN_TOKEN,
                      "REINDEX_RUNNER": runner, "CHECKPOINT": "none"})
    return app, runner


def wait_for(client, url, states, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url, headers=AUTH).get_json()
        if body["state"] in states:
            return body
        time.sleep(0.05)
    raise AssertionError(f"job stuck in {body['state']}")


def test_reindex_api_starts_one_job_and_reports_progress(admin_app):
    app, runner = admin_app
    client = app.test_client()
    response = client.post("/api/reindex?with_model=false", headers=AUTH)
    assert response.status_code == 202
    body = response.get_json()
    job_id, url = body["job_id"], body["status_url"]
    assert re.match(r"^\d{8}t\d{6}-[0-9a-f]{6}$", job_id) and response.headers["Location"] == url
    running = wait_for(client, url, ("running",))
    assert running["options"] == {"with_model": False, "fresh": False}
    second = client.post("/api/reindex", headers=AUTH)
    assert second.status_code == 409 and job_id in second.get_json()["error"]["message"]
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow, this is not a speed test
    while client.get(url, headers=AUTH).get_json()["progress"]["done"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(url, headers=AUTH).get_json()["progress"] == {
        "phase": "indexing", "version": "v1", "done": 3, "total": 3, "indexed": 3, "unchanged": 0, "skipped": 0,
        "failed": 0, "elapsed_s": 0.3, "rate": 10.0}
    runner.release.set()
    done = wait_for(client, url, ("succeeded", "failed"))
    assert done["state"] == "succeeded" and done["summary"]["indexed"] == 3 and done["finished"]
    assert client.post("/api/reindex", headers=AUTH).status_code == 202  # the lock is free again
    runner.release.set()


def test_job_state_needs_admin_and_a_valid_id(admin_app):
    app, _ = admin_app
    client = app.test_client()
    assert client.get("/api/jobs/20250101t000000-abcdef").status_code == 401
    assert client.get("/api/jobs/20250101t000000-abcdef", headers=AUTH).status_code == 404
    bad = client.get("/api/jobs/..%2f..%2fetc", headers=AUTH)
    assert bad.status_code == 404 and bad.get_json()["error"]["type"] in ("NotFound",)
    assert client.post("/api/reindex?fresh=maybe", headers=AUTH).status_code == 400
    assert client.get("/api/reindex").status_code == 405


def test_a_failed_job_records_why_and_a_dead_one_reads_as_interrupted(admin_app, tmp_path):
    app, runner = admin_app
    runner.fail = True
    client = app.test_client()
    url = client.post("/api/reindex", headers=AUTH).get_json()["status_url"]
    runner.release.set()
    failed = wait_for(client, url, ("failed",))
    assert failed["error"] == "RuntimeError: disk full" and "traceback" in failed
    store = JobStore(app.config["INDEX_DIR"])
    store.write({"id": "20250101t000000-abcdef", "state": "running", "progress": {}})
    assert store.read("20250101t000000-abcdef")["state"] == "interrupted"  # nobody holds the run lock


def test_admin_pages_login_start_and_cancel(admin_app):
    app, runner = admin_app
    client = app.test_client()
    login = client.get("/admin").get_data(as_text=True)
    assert 'type="password"' in login
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    wrong = client.post("/admin/login", data={"csrf_token": token, "token": "nope-nope-nope-nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    ok = client.post("/admin/login", data={"csrf_token": token, "token": ADMIN_TOKEN})
    assert ok.status_code == 303 and ok.headers["Location"] == "/admin"
    page = client.get("/admin").get_data(as_text=True)
    assert 'id="index-stats"' in page and "Start reindex" in page
    started = client.post("/admin/reindex", data={"csrf_token": token, "with_model": "true"})
    assert started.status_code == 303
    job_id = started.headers["Location"].split("job=")[1]
    page = client.get("/admin").get_data(as_text=True)
    assert f'data-job-id="{job_id}"' in page
    assert client.get(f"/api/jobs/{job_id}").status_code == 200  # the session's cookie is enough for the page's JS
    cancel = client.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert cancel.status_code == 303
    runner.release.set()
    state = wait_for(client, f"/api/jobs/{job_id}", ("cancelled", "succeeded"))
    assert state["state"] == "cancelled"
    client.post("/admin/logout", data={"csrf_token": token})
    assert client.get(f"/api/jobs/{job_id}").status_code == 401


def test_the_real_job_runs_the_reindex_command_in_a_child_process(web_corpus, tmp_path):
    """No stand-in runner: POST /api/reindex runs `cxrsearch reindex --progress-json`; progress and the summary
    come back through the job's state, and a second run finds nothing changed."""
    import shutil

    index = tmp_path / "index"
    shutil.copytree(web_corpus.index_dir, index)
    app = create_app(web_corpus.config(INDEX_DIR=str(index), ADMIN_TOKEN=ADMIN_TOKEN))
    client = app.test_client()
    url = client.post("/api/reindex?with_model=false", headers=AUTH).get_json()["status_url"]
    done = wait_for(client, url, ("succeeded", "failed"), timeout=180)
    assert done["state"] == "succeeded", done.get("error")
    assert done["summary"]["documents"] == len(web_corpus.ids) and done["summary"]["switched"] is True
    assert done["progress"]["done"] == done["progress"]["total"] == len(web_corpus.ids)
    url = client.post("/api/reindex?with_model=false", headers=AUTH).get_json()["status_url"]
    again = wait_for(client, url, ("succeeded", "failed"), timeout=180)
    assert again["state"] == "succeeded" and again["summary"]["nothing_changed"] is True


def test_a_real_job_that_fails_says_why(web_corpus, tmp_path):
    app = create_app(web_corpus.config(INDEX_DIR=str(tmp_path / "index"), IMAGES_DIR=str(tmp_path / "nowhere"),
                                       ADMIN_TOKEN=ADMIN_TOKEN))
    client = app.test_client()
    url = client.post("/api/reindex?with_model=false", headers=AUTH).get_json()["status_url"]
    failed = wait_for(client, url, ("succeeded", "failed"), timeout=120)
    assert failed["state"] == "failed"
    assert failed["error"].startswith("ReindexFailed: cxrsearch reindex exited with 1") and "nowhere" in failed["error"]
