"""Prometheus metrics: request counts and latency per endpoint, and the size of the live index (GET /metrics).

Under gunicorn with several workers, `cxrsearch serve` sets PROMETHEUS_MULTIPROC_DIR before the
workers start, and /metrics aggregates every worker's counters (prometheus_client multiprocess mode).
"""
from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from indexer.errors import IndexerError

REQUESTS = Counter("cxrsearch_http_requests", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("cxrsearch_http_request_duration_seconds", "Time to answer a request", ["endpoint"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
UPLOADS = Counter("cxrsearch_uploads", "Uploaded images by outcome", ["outcome"])

bp = Blueprint("metrics", __name__)


class IndexCollector:
    """Read at scrape time: documents and bytes of the live text index, vectors per kind."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from search_web.services import EXTENSION

        svc = self.app.extensions[EXTENSION]
        up = GaugeMetricFamily("cxrsearch_index_up", "1 when the live text index answers", labels=["backend"])
        docs = GaugeMetricFamily("cxrsearch_index_documents", "Documents in the live text index", labels=["backend"])
        size = GaugeMetricFamily("cxrsearch_index_size_bytes", "Bytes of the live text index", labels=["backend"])
        vectors = GaugeMetricFamily("cxrsearch_vectors", "Vectors in the live stores", labels=["kind"])
        try:
            backend = svc.text()
            version = backend.live_version()
            docs.add_metric([svc.backend_name], backend.count(version=version))
            size.add_metric([svc.backend_name], backend.size_bytes(version=version))
            for kind in svc.vector_kinds(version):
                vectors.add_metric([kind], len(svc.vectors.get(kind)[1]))
            up.add_metric([svc.backend_name], 1)
        except IndexerError:
            up.add_metric([svc.backend_name], 0)
        yield from (up, docs, size, vectors)


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def start_timer() -> None:
    g._metrics_start = time.perf_counter()


_children: dict[tuple, object] = {}   # labelled metrics, looked up once (labels() validates and locks each time)


def _child(metric, *labels: str):
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its time (the Flask hook below, and search_web.fast_search)."""
    _child(LATENCY, endpoint).observe(seconds)
    _child(REQUESTS, endpoint, method, str(status)).inc()


def record(response):
    start = g.pop("_metrics_start", None)
    if start is not None and request.path != "/metrics":
        observe(_endpoint(), request.method, response.status_code, time.perf_counter() - start)
    return response


@bp.get("/metrics")
def metrics():
    """Prometheus text format: request counts, latency histograms, index size."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in (REQUESTS, LATENCY, UPLOADS):
            registry.register(metric)
    registry.register(IndexCollector(current_app._get_current_object()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Cache-Control": "no-store"})


def install(app: Flask) -> None:
    app.before_request(start_timer)
    app.after_request(record)
    app.register_blueprint(bp)
