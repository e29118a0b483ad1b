"""Vector backends: the FAISS store, Elasticsearch kNN (es_knn), and the live vectors of each index version.

Readers use one interface whatever the backend (`VectorReader`): `open_vectors` / `LiveVectors.get`
return the FAISS `VectorStore` or the `EsVectorIndex` the live index version was built with.
"""

from indexer.vectors.base import VECTOR_KINDS, AddResult, Neighbours, VectorReader
from indexer.vectors.faiss_config import INDEX_TYPES, VectorStoreConfig
from indexer.vectors.faiss_store import VectorStore
from indexer.vectors.live import LiveVectors, has_vectors, live_vectors, open_vectors, vector_kind

__all__ = ["VECTOR_KINDS", "INDEX_TYPES", "AddResult", "LiveVectors", "Neighbours", "VectorReader", "VectorStore",
           "VectorStoreConfig", "has_vectors", "live_vectors", "open_vectors", "vector_kind"]
