"""Admin: index statistics, start/watch/cancel reindex jobs; pages behind a token login, API behind a bearer token."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from indexer.errors import IndexerError
from search_web import jobs
from search_web.api import index_stats
from search_web.encoder import candidate_checkpoints, find_checkpoint
from search_web.errors import Forbidden, classify
from search_web.security import (
    admin_enabled,
    check_csrf,
    login_admin,
    logout_admin,
    require_admin_token,
    session_is_admin,
)
from search_web.services import services

bp = Blueprint("admin", __name__)


def reindex_checkpoint() -> Path | None:
    """The cascade a reindex annotates with: CHECKPOINT when it is a path; else the one that made the live
    vectors (so a reindex keeps one model), else the first trained (data dir) or committed one."""
    setting = str(current_app.config.get("CHECKPOINT") or "auto")
    if setting.lower() == "none":
        return None
    if setting.lower() != "auto":
        return Path(setting)
    data_dir = Path(current_app.config["DATA_DIR"])
    svc = services()
    try:
        live = svc.vectors.get("context")[1].model_version if svc.vectors is not None else None
    except IndexerError:
        live = None
    if live:
        path = find_checkpoint("auto", data_dir, live)
        if path is not None:
            return path
    found = candidate_checkpoints(data_dir)
    return found[0] if found else None


def _store() -> jobs.JobStore:
    return jobs.JobStore(Path(current_app.config["INDEX_DIR"]))


# --- JSON API (bearer token) ----------------------------------------------------------------------------

@bp.post("/api/reindex")
def api_reindex():
    """Start a reindex job (admin token); 202 with the job id and where to watch it."""
    require_admin_token()
    state = jobs.start_job(current_app.config, jobs.job_options(request.form or request.args), reindex_checkpoint(),
                           current_app.config.get("REINDEX_RUNNER"))
    response = jsonify({"job_id": state["id"], "state": state["state"],
                        "status_url": url_for("admin.api_job", job_id=state["id"])})
    response.status_code = 202
    response.headers["Location"] = url_for("admin.api_job", job_id=state["id"])
    return response


@bp.get("/api/jobs/<job_id>")
def api_job(job_id: str):
    """A job's state, progress and summary (admin token or admin session; any worker can answer)."""
    if not session_is_admin():
        require_admin_token()
    return jsonify(_store().read(job_id))


# --- pages (session login with the token; CSRF on every form) ------------------------------------------

@bp.get("/admin")
def admin_page():
    if not admin_enabled():
        raise Forbidden("admin is switched off: start the app with CXRSEARCH_ADMIN_TOKEN set")
    if not session_is_admin():
        return render_template("admin_login.html", error=None)
    svc = services()
    stats, stats_error = None, None
    try:
        stats = index_stats(svc)
    except IndexerError as e:
        stats_error = classify(e)[2]
    return render_template("admin.html", stats=stats, stats_error=stats_error, jobs=_store().recent(10),
                           checkpoint=reindex_checkpoint())


@bp.post("/admin/login")
def admin_login():
    check_csrf()
    if not admin_enabled():
        raise Forbidden("admin is switched off: start the app with CXRSEARCH_ADMIN_TOKEN set")
    if not login_admin(request.form.get("token", "")):
        return render_template("admin_login.html", error="That token is not valid."), 401
    return redirect(url_for("admin.admin_page"), code=303)


@bp.post("/admin/logout")
def admin_logout():
    check_csrf()
    logout_admin()
    return redirect(url_for("pages.search"), code=303)


def _require_session() -> None:
    check_csrf()
    if not admin_enabled() or not session_is_admin():
        raise Forbidden("log in on the admin page first")


@bp.post("/admin/reindex")
def admin_reindex():
    _require_session()
    state = jobs.start_job(current_app.config, jobs.job_options(request.form), reindex_checkpoint(),
                           current_app.config.get("REINDEX_RUNNER"))
    return redirect(url_for("admin.admin_page", job=state["id"]), code=303)


@bp.post("/admin/jobs/<job_id>/cancel")
def admin_cancel(job_id: str):
    _require_session()
    jobs.cancel_job(_store(), job_id)
    return redirect(url_for("admin.admin_page", job=job_id), code=303)
