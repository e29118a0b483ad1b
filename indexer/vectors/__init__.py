"""Vector backends: the FAISS store, the live stores of each index version, and an optional ES kNN mirror (es_knn)."""

from indexer.vectors.base import VECTOR_KINDS, AddResult, Neighbours
from indexer.vectors.faiss_store import INDEX_TYPES, VectorStore, VectorStoreConfig
from indexer.vectors.live import LiveVectors, has_vectors, live_vectors, open_vectors, vector_kind

__all__ = ["VECTOR_KINDS", "INDEX_TYPES", "AddResult", "LiveVectors", "Neighbours", "VectorStore", "VectorStoreConfig",
           "has_vectors", "live_vectors", "open_vectors", "vector_kind"]
