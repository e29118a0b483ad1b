"""The benchmark's sections (a new section: a module here, imported below, and its place in section.RUN_ORDER)."""
from pipelines.bench.sections import fuzz, http, indexing, quality, scale, service, similar  # noqa: F401 (registers them)
