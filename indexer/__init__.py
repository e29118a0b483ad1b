"""Index documents, text and vector backends, query understanding and retrieval."""
