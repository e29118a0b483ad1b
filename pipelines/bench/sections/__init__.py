"""The benchmark's sections, registered in the order they run (a new section: a module here, imported below)."""
from pipelines.bench.sections import fuzz, http, indexing, quality, scale, service, similar  # noqa: F401 (registers them)
