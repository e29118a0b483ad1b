"""2-D maps of joint image/text context vectors (paper Figure 4), PCA or t-SNE, saved as PNG."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, H) -> (N, 2) with PCA or t-SNE (perplexity adapted to small N)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 3:
        return np.pad(vectors[:, :2], ((0, 0), (0, max(0, 2 - vectors.shape[1]))))
    if method == "tsne":
        from sklearn.manifold import TSNE
        perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(vectors)
    from sklearn.decomposition import PCA
    return PCA(n_components=2, random_state=seed).fit_transform(vectors)


def plot_context_map(vectors: np.ndarray, clusters: Sequence[str], annotations: Sequence[str], path: Path,
                     method: str = "pca", seed: int = 0, title: str = "", max_text: int = 40) -> Path:
    """Scatter the context vectors of one label coloured by new (cluster) label, a few annotated."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = project_2d(vectors, method, seed)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    names = sorted(set(clusters))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        mask = np.array([c == name for c in clusters])
        ax.scatter(points[mask, 0], points[mask, 1], s=14, color=cmap(i % cmap.N), label=f"{name} ({mask.sum()})")
    rng = np.random.default_rng(seed)
    for j in rng.choice(len(points), size=min(max_text, len(points)), replace=False):
        ax.annotate(annotations[j], points[j], fontsize=6, alpha=0.7)
    ax.set_title(f"{title} ({method.upper()})" if title else method.upper())
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
