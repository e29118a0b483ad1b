"""The paper's Figure 4 for any label: joint context vectors of its images in 2-D (PCA or t-SNE), k-means clusters.

Vectors are read from the live FAISS store (indexer.vectors.live); a label's images are those whose
report-mined `label` is that label. k = round(n / 50) clusters as in the paper's relabelling (at least 2).
Results are cached per (index version, label, method).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from search_web.errors import BadRequest, Conflict
from search_web.services import Services

METHODS = ("pca", "tsne")
MAX_POINTS = 1500          # t-SNE and the SVG stay quick; larger labels are sampled (seeded)
WIDTH, HEIGHT, PAD = 760, 560, 24
PALETTE = ("#4cc9f0", "#f72585", "#ffd166", "#06d6a0", "#ff8c42", "#b388ff", "#90be6d", "#ef476f",
           "#118ab2", "#f9c74f", "#43aa8b", "#e76f51", "#8ecae6", "#c77dff", "#adb5bd", "#f4a261")


@dataclass
class ContextMap:
    label: str
    method: str
    version: str
    n: int
    sampled: bool
    k: int
    points: list[dict]        # {"image_id", "x", "y", "cluster", "annotation"}
    clusters: list[dict]      # {"cluster", "size", "colour"}
    explained: list[float]    # PCA explained variance ratio of the two axes ([] for t-SNE)


_cache: OrderedDict[tuple, ContextMap] = OrderedDict()
_lock = threading.Lock()


def labels(svc: Services) -> dict[str, int]:
    """Mined labels with their image counts in the live index, most frequent first."""
    result = svc.text().search("", k=1, facets=("label",))
    return dict(sorted(result.facets.get("label", {}).items(), key=lambda kv: (-kv[1], kv[0])))


def build(svc: Services, label: str, method: str = "pca", seed: int = 0) -> ContextMap:
    """Project the context vectors of `label`'s images to 2-D and cluster them."""
    if method not in METHODS:
        raise BadRequest(f"method={method!r} is invalid; valid: {', '.join(METHODS)}")
    version, store = svc.vectors.get("context") if svc.vectors is not None else (None, None)
    key = (version, label, method, seed)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = svc.text().search("", filters={"label": [label]}, k=10_000, facets=(), version=version)
    ids = [h.image_id for h in result.hits if h.image_id in store]
    if len(ids) < 3:
        raise Conflict(f"label {label!r} has {len(ids)} images with context vectors; a map needs at least 3")
    rng = np.random.default_rng(seed)
    sampled = len(ids) > MAX_POINTS
    if sampled:
        ids = sorted(rng.choice(ids, MAX_POINTS, replace=False).tolist())
    annotations = {h.image_id: h.annotation for h in result.hits}
    vectors = store.get_vectors(ids)                                   # (N, H) unit rows
    k = max(2, min(len(PALETTE), round(len(ids) / 50)))
    from sklearn.cluster import KMeans

    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)
    explained: list[float] = []
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(vectors)
        explained = [round(float(v), 3) for v in pca.explained_variance_ratio_]
    else:
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, perplexity=min(30.0, (len(ids) - 1) / 3), init="pca", random_state=seed,
                  max_iter=500).fit_transform(vectors)
    xy = _to_canvas(xy)
    points = [{"image_id": i, "x": round(float(x), 1), "y": round(float(y), 1), "cluster": int(c),
               "annotation": annotations.get(i, "")} for i, (x, y), c in zip(ids, xy, clusters)]
    sizes = np.bincount(clusters, minlength=k)
    out = ContextMap(label, method, version, len(result.hits), sampled, k, points,
                     [{"cluster": c, "size": int(sizes[c]), "colour": PALETTE[c % len(PALETTE)]} for c in range(k)],
                     explained)
    with _lock:
        _cache[key] = out
        while len(_cache) > 32:
            _cache.popitem(last=False)
    return out


def _to_canvas(xy: np.ndarray) -> np.ndarray:
    """Scale 2-D points into the SVG canvas, keeping the aspect ratio (y up)."""
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.maximum(high - low, 1e-9)
    scale = min((WIDTH - 2 * PAD) / span[0], (HEIGHT - 2 * PAD) / span[1])
    centre = (low + high) / 2
    out = np.empty_like(xy)
    out[:, 0] = WIDTH / 2 + (xy[:, 0] - centre[0]) * scale
    out[:, 1] = HEIGHT / 2 - (xy[:, 1] - centre[1]) * scale
    return out
