"""Errors raised by the indexer package: one base class, small subclasses with clear messages."""


class IndexerError(Exception):
    """Base class of every error raised by `indexer`."""


class VocabularyError(IndexerError):
    """A vocabulary data file is missing or inconsistent; the message names the file and problem."""


class UnknownTermError(IndexerError):
    """A name is neither a vocabulary descriptor nor a known Open-i term."""

    def __init__(self, name: str, suggestions: list[str] | None = None):
        hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
        super().__init__(f"unknown MeSH descriptor or Open-i term {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions or []


# --- vectors (indexer/vectors) -------------------------------------------------------------------


class VectorStoreError(IndexerError):
    """Base class of the vector store's errors (FAISS files, vectors, ids)."""


class InvalidVectorConfig(VectorStoreError, ValueError):
    """A vector store setting is out of range (unknown index type, nlist < 1, ...)."""


class DimensionMismatch(VectorStoreError, ValueError):
    """Vectors or queries whose dimension differs from the store's dimension."""


class InvalidVectors(VectorStoreError, ValueError):
    """Vectors or image ids that cannot be stored or searched (NaN, zero norm, duplicate ids, bad k, ...)."""


class UnknownImageId(VectorStoreError, KeyError):
    """An image id that is not in the vector store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelVersionMismatch(VectorStoreError, ValueError):
    """A stored index built by another model version than the one asked for."""


class VectorStoreNotFound(VectorStoreError, FileNotFoundError):
    """No vector store (meta.json) at the given path."""


class VectorStoreCorrupt(VectorStoreError):
    """A vector store on disk whose files disagree with each other or cannot be read."""


class GpuUnavailable(VectorStoreError):
    """A GPU was asked for but faiss has no GPU support or no GPU is visible."""


# --- text index and documents (indexer/text, indexer/documents) ----------------------------------


class IndexUnavailable(IndexerError):
    """A text index cannot be reached or opened (for example the Elasticsearch URL does not answer)."""


class IndexNotFound(IndexerError):
    """No text index (or no such index version) exists yet; the message says how to build one."""


class InvalidQuery(IndexerError, ValueError):
    """A search request with an unknown filter or facet field, or a bad value for k."""


class DocumentError(IndexerError, ValueError):
    """A document that does not fit the index schema (no image id, an unknown field, ...)."""


class DocumentNotFound(IndexerError, KeyError):
    """No document with that image id in the index version asked for."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
