"""The benchmark's sections, registered in the order they run (a new section: a module here, imported below)."""
from pipelines.bench.sections import indexing, similar, service, scale, http, fuzz, quality  # noqa: F401 (registers them)
