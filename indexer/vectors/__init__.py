"""Vector backends: the FAISS store (faiss_store) and the optional Elasticsearch kNN mirror (es_knn, import it directly)."""

from indexer.vectors.base import VECTOR_KINDS, AddResult, Neighbours
from indexer.vectors.faiss_store import INDEX_TYPES, VectorStore, VectorStoreConfig

__all__ = ["VECTOR_KINDS", "INDEX_TYPES", "AddResult", "Neighbours", "VectorStore", "VectorStoreConfig"]
