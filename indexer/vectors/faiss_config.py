"""FAISS store configuration and the choices made from it: index type by size, IVF/PQ parameters, CPU or GPU.

Pure functions except the device probe: `target_index_type` says which index a store of N vectors
gets under a config (exact ``flat`` while small, IVF-Flat, IVF-PQ only when full vectors do not
fit); `choose_device` picks CPU or GPU from what the installed faiss offers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from indexer.errors import GpuUnavailable, InvalidVectorConfig
from indexer.vectors.faiss_import import faiss

INDEX_TYPES = ("auto", "flat", "ivf_flat", "hnsw", "ivf_pq")
DEVICES = ("auto", "cpu", "gpu")
GPU_INDEX_TYPES = ("flat", "ivf_flat", "ivf_pq")
GPU_EXTRA = "gpu"  # pip install "cxrsearch[gpu]": faiss-gpu-cu12 instead of faiss-cpu

RANK = {"flat": 0, "hnsw": 0, "ivf_flat": 1, "ivf_pq": 2}
POINTS_PER_CENTROID = 39  # faiss warns below 39 training points per k-means centroid
_CHUNK = 65_536  # vectors per add/reconstruct batch during rebuilds


@dataclass(frozen=True)
class VectorStoreConfig:
    """How a store picks, trains and searches its FAISS index (saved in meta.json).

    Attributes:
        index_type: one of ``INDEX_TYPES``; ``auto`` chooses by size.
        exact_max: ``auto`` uses exact search below this many vectors.
        ivf_flat_max_gib: ``auto`` uses IVF-Flat while n * dim * 4 bytes fits in this many GiB
            (8 GiB: 2M vectors at 1024-d, 16M at 128-d), IVF-PQ above.
        nlist: IVF lists; None = 4*sqrt(n), capped so each list has >= 39 training vectors.
        nprobe: IVF lists scanned per query; None = max(16, nlist // 16).
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW build beam width.
        ef_search: HNSW search beam width (raised to k when k is larger).
        pq_m: PQ sub-quantisers = bytes per vector at 8 bits; None = dim // 8 (>= 8, divides dim).
        pq_nbits: bits per PQ sub-quantiser code.
        train_size: at most this many vectors (a seeded sample) train IVF centroids and PQ codebooks.
        device: ``auto`` (GPU when faiss has one), ``cpu`` or ``gpu`` (error when none).
        seed: seed of the training sample and of k-means.
    """

    index_type: str = "auto"
    exact_max: int = 100_000
    ivf_flat_max_gib: float = 8.0
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    pq_m: int | None = None
    pq_nbits: int = 8
    train_size: int = 100_000
    device: str = "auto"
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise InvalidVectorConfig(f"index_type {self.index_type!r} is unknown; valid: {', '.join(INDEX_TYPES)}")
        if self.device not in DEVICES:
            raise InvalidVectorConfig(f"device {self.device!r} is unknown; valid: {', '.join(DEVICES)}")
        for name in ("exact_max", "hnsw_m", "ef_construction", "ef_search", "train_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidVectorConfig(f"{name}={value!r} must be a positive integer")
        for name in ("nlist", "nprobe", "pq_m"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidVectorConfig(f"{name}={value!r} must be a positive integer or None (automatic)")
        if not 1 <= self.pq_nbits <= 16:
            raise InvalidVectorConfig(f"pq_nbits={self.pq_nbits!r} must be between 1 and 16 (8 is usual)")
        if not isinstance(self.ivf_flat_max_gib, (int, float)) or not self.ivf_flat_max_gib > 0:
            raise InvalidVectorConfig(f"ivf_flat_max_gib={self.ivf_flat_max_gib!r} must be a positive number of GiB")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VectorStoreConfig:
        """Rebuild a config from ``to_dict`` output; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidVectorConfig(f"unknown vector store settings {unknown}; valid: {sorted(known)}")
        return cls(**values)


# --- device choice ---------------------------------------------------------------------------------


def gpu_support() -> tuple[bool, int]:
    """Return (whether this faiss build has GPU support, number of GPUs it sees)."""
    has_gpu_build = hasattr(faiss, "StandardGpuResources") and hasattr(faiss, "index_cpu_to_gpu")
    return has_gpu_build, (faiss.get_num_gpus() if has_gpu_build else 0)


def choose_device(requested: str, gpu_build: bool, num_gpus: int) -> str:
    """Pick ``cpu`` or ``gpu`` for searches.

    Args:
        requested: ``auto``, ``cpu`` or ``gpu``.
        gpu_build: whether faiss was built with GPU support (``faiss-gpu-cu12``).
        num_gpus: ``faiss.get_num_gpus()``.
    Raises:
        GpuUnavailable: ``gpu`` was requested and no GPU can be used.
    """
    if requested not in DEVICES:
        raise InvalidVectorConfig(f"device {requested!r} is unknown; valid: {', '.join(DEVICES)}")
    usable = gpu_build and num_gpus > 0
    if requested == "gpu" and not usable:
        why = (
            f"the installed faiss {faiss.__version__} has no GPU support (pip install 'cxrsearch[{GPU_EXTRA}]')"
            if not gpu_build
            else "faiss sees no GPU (faiss.get_num_gpus() == 0)"
        )
        raise GpuUnavailable(f"device 'gpu' requested but {why}; use device 'auto' or 'cpu'")
    if requested == "cpu":
        return "cpu"
    return "gpu" if usable else "cpu"


_gpu_resources: Any = None


def index_to_gpu(index: Any) -> Any:
    """Copy a CPU index to GPU 0 (one StandardGpuResources per process)."""
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_gpu_resources, 0, index)


# --- parameter resolution (pure) -------------------------------------------------------------------


def auto_nlist(n: int, train_n: int) -> int:
    """IVF list count: 4*sqrt(n), at most one list per 39 training vectors, at least 1."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), train_n // POINTS_PER_CENTROID))


def auto_pq_m(dimension: int) -> int:
    """PQ sub-quantisers: about dim/8 (128 bytes for 1024-d, 32x smaller), at least 8, dividing dim."""
    target = max(8, dimension // 8)
    for m in range(min(target, dimension), 0, -1):
        if dimension % m == 0:
            return m
    return 1


def min_train_vectors(index_type: str, config: VectorStoreConfig) -> int:
    """Vectors an IVF type needs before it is built: 1,000, and 39 per PQ centroid for ivf_pq."""
    if index_type == "ivf_pq":
        return max(1_000, POINTS_PER_CENTROID * 2**config.pq_nbits)
    return 1_000 if index_type == "ivf_flat" else 0


def target_index_type(config: VectorStoreConfig, count: int, dimension: int) -> str:
    """The index type a store with ``count`` vectors of ``dimension`` should have under ``config``."""
    kind = config.index_type
    if kind == "auto":
        if count < config.exact_max:
            return "flat"
        raw_gib = count * dimension * 4 / 2**30
        kind = "ivf_flat" if raw_gib <= config.ivf_flat_max_gib else "ivf_pq"
    return kind if count >= min_train_vectors(kind, config) else "flat"
