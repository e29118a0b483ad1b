"""The FAISS library, or an error that names the extra installing it (`cpu` or `gpu`, see setup.cfg)."""
from __future__ import annotations

try:
    import faiss
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("FAISS is not installed: pip install 'cxrsearch[cpu]' (or 'cxrsearch[gpu]' on a CUDA machine, "
                      "which installs faiss-gpu-cu12 instead)") from e

__all__ = ["faiss"]
