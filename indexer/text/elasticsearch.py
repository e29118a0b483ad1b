"""Elasticsearch text backend: versioned indices behind an alias, bulk writes, and retrieval plans in one _msearch.

- Explicit mapping derived from `indexer.documents`: report and annotation text through the
  `standard` analyzer with English stop words (the server's core analysis; the project's test server,
  the integ-test-zip, has no `english`/stemming analyzers, so none is used anywhere), keyword fields
  for filters and facets, stored-only objects not indexed, and `dynamic: strict` so schema drift
  fails loudly.
- Versions: each build writes a concrete index `<alias>-v<version>`; `switch` moves the alias in one
  `_aliases` call (atomic on the server), and only then deletes the previous version.
- Bulk writes through `elasticsearch.helpers.streaming_bulk`; per-document rejections are reported
  in the WriteResult, not raised.
- Every client error is wrapped at one boundary (indexer.es_connection, shared with the kNN vector
  index): unreachable/refused/TLS/auth -> IndexUnavailable naming the URL; a missing index ->
  IndexNotFound; anything else -> IndexerError. Connection settings: `ESSettings` there.
- Retrieval plans become query DSL in indexer.query.dsl (pure, no client).
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from indexer.documents import KEYWORD_FIELDS, SCHEMA_VERSION, STORED_FIELDS, TEXT_FIELDS, validate_document
from indexer.errors import DocumentNotFound, IndexerError, IndexNotFound, IndexUnavailable
from indexer.es_connection import ESConnection, ESSettings
from indexer.query import dsl
from indexer.text.base import (
    Filters,
    Hit,
    SearchResult,
    TextBackend,
    WriteResult,
    check_facets,
    check_k,
    check_version_name,
    new_version_name,
    normalise_filters,
)

FACET_SIZE = 20
MAX_RESULT_WINDOW = 10_000  # Elasticsearch's default index.max_result_window: hits one search may return
ANALYZER = "report_text"


LIVE_REFRESH_INTERVAL = "1s"
# How long a search may rank on the live version it read from the alias before reading it again: one round trip
# of three per query saved. A search on a version a reindex dropped meanwhile reads the alias again (retrieve).
LIVE_ALIAS_TTL_S = 1.0


def _clock() -> float:
    return time.monotonic()


def index_settings(settings: ESSettings) -> dict:
    """Index settings: shard counts, the report-text analyzer (core `standard` + English stop words).

    A version being built does not refresh on a timer (writers refresh when they need to read);
    `switch` turns the periodic refresh on when the version goes live.
    """
    return {
        "number_of_shards": settings.shards,
        "number_of_replicas": settings.replicas,
        "refresh_interval": "-1",
        "analysis": {"analyzer": {ANALYZER: {"type": "standard", "stopwords": "_english_"}}},
        "mapping": {"total_fields": {"limit": 20000}},  # one numeric field per concept group the cascade scores
    }


def index_mappings() -> dict:
    """The explicit mapping of an image document (from the schema in indexer.documents)."""
    props: dict[str, dict] = {name: {"type": "text", "analyzer": ANALYZER} for name in TEXT_FIELDS}
    props.update({name: {"type": "keyword"} for name in KEYWORD_FIELDS})
    props["synthetic"] = {"type": "boolean"}
    for name in STORED_FIELDS:
        if name not in ("content_hash", "schema_version"):
            props[name] = {"type": "object", "enabled": False}
    for name in dsl.SCORE_OBJECTS:
        props[name] = {"type": "object", "dynamic": True}
    props["content_hash"] = {"type": "keyword", "index": False}
    props["schema_version"] = {"type": "integer", "index": False}
    props[dsl.GENERATED_MARKER] = {"type": "float", "index": False}  # doc values only: for `exists`
    templates = [{f"{name}_as_floats": {"path_match": f"{name}.*", "mapping": {
        "type": "float", **({"copy_to": dsl.GENERATED_MARKER} if name == "generated_scores" else {})}}}
        for name in dsl.SCORE_OBJECTS]
    return {"dynamic": "strict", "dynamic_templates": templates, "_meta": {"schema_version": SCHEMA_VERSION},
            "properties": props}


def _for_es(doc: Mapping) -> dict:
    """A document as Elasticsearch stores it: score-object keys without dots (see indexer.query.dsl.score_field)."""
    out = dict(doc)
    for name in dsl.SCORE_OBJECTS:
        if isinstance(out.get(name), Mapping):
            out[name] = {k.replace(".", "_"): v for k, v in out[name].items()}
    return out


class ElasticsearchTextBackend(TextBackend):
    """The text index in Elasticsearch: alias `settings.index` over versioned indices."""

    name = "es"

    def __init__(self, settings: ESSettings | None = None, client: Elasticsearch | None = None):
        self.settings = settings or ESSettings.from_env()
        if self.settings.index != self.settings.index.lower() or not self.settings.index:
            raise IndexerError(f"Elasticsearch index name {self.settings.index!r} must be non-empty lower case")
        self._connection = ESConnection(self.settings, client)
        self._markers: dict[str, bool] = {}  # concrete index -> has dsl.GENERATED_MARKER (see _layout)
        self._live_read: tuple[float, str | None] | None = None  # (monotonic time, live version) for retrieve

    # --- the client and the error boundary (indexer.es_connection) ----------------------------------

    @property
    def client(self) -> Elasticsearch:
        return self._connection.client

    def _guard(self, action: str):
        return self._connection.guard(
            action, lambda message: IndexNotFound(f"{message}; build the index with `cxrsearch reindex --backend es`"))

    def check(self) -> dict:
        """Cluster health; raises IndexUnavailable (naming the URL) when the server does not answer."""
        with self._guard("cluster health"):
            return dict(self.client.cluster.health())

    def index_name(self, version: str) -> str:
        """The concrete index of a version."""
        return f"{self.settings.index}-v{check_version_name(version)}"

    @property
    def _parts_index(self) -> str:
        return f"{self.settings.index}-parts"

    def _target(self, version: str | None) -> str:
        if version is None:
            live = self.live_version()
            if live is None:
                raise IndexNotFound(f"no text index {self.settings.index!r} at {self.settings.safe_url}: build one "
                                    "with `cxrsearch reindex --images DIR --backend es`")
            version = live
        return self.index_name(version)

    # --- versions and the alias -------------------------------------------------------------------

    def create(self, version: str | None = None) -> str:
        version = check_version_name(version or new_version_name())
        with self._guard(f"create index {self.index_name(version)}"):
            self.client.indices.create(index=self.index_name(version), settings=index_settings(self.settings),
                                       mappings=index_mappings())
        return version

    def versions(self) -> list[str]:
        prefix = f"{self.settings.index}-v"
        with self._guard("list index versions"):
            found = self.client.indices.get(index=f"{prefix}*", allow_no_indices=True, ignore_unavailable=True)
        return sorted(name[len(prefix):] for name in found)

    def _alias_indices(self) -> list[str]:
        with self._guard(f"read alias {self.settings.index}"):
            try:
                return sorted(self.client.indices.get_alias(name=self.settings.index))
            except NotFoundError:
                return []

    def live_version(self) -> str | None:
        prefix = f"{self.settings.index}-v"
        names = [n for n in self._alias_indices() if n.startswith(prefix)]
        return names[-1][len(prefix):] if names else None

    def switch(self, version: str, keep_previous: bool = False) -> str | None:
        new = self.index_name(version)
        current = self._alias_indices()
        previous = self.live_version()
        actions = [{"remove": {"index": name, "alias": self.settings.index}} for name in current if name != new]
        actions.append({"add": {"index": new, "alias": self.settings.index, "is_write_index": True}})
        with self._guard(f"move alias {self.settings.index} to {new}"):
            self.client.indices.put_settings(index=new, settings={"index": {"refresh_interval": LIVE_REFRESH_INTERVAL}})
            self.client.indices.refresh(index=new)
            self.client.indices.update_aliases(actions=actions)  # the atomic step
        self._live_read = None  # this process's next search reads the alias it just moved
        if previous and previous != version and not keep_previous:
            self.drop(previous)
        return previous if previous != version else None

    def drop(self, version: str) -> None:
        name = self.index_name(version)
        if version == self.live_version():
            raise IndexerError(f"refusing to drop index version {version!r} ({name}): it is live")
        with self._guard(f"delete index {name}"):
            self.client.indices.delete(index=name, ignore_unavailable=True)
            if self.client.indices.exists(index=self._parts_index):  # (no _delete_by_query on a core-only server)
                found = self.client.search(index=self._parts_index, query={"term": {"version": version}},
                                           size=10_000, source=False)
                for hit in found["hits"]["hits"]:
                    self.client.delete(index=self._parts_index, id=hit["_id"], refresh=True)

    # --- writes -------------------------------------------------------------------------------------

    def index(self, documents: Iterable[Mapping], version: str | None = None, batch_size: int = 500,
              refresh: bool = True) -> WriteResult:
        name = self._target(self._write_target(version))
        result = WriteResult()

        def actions() -> Iterator[dict]:
            for doc in documents:
                try:
                    validate_document(doc)
                except IndexerError as e:
                    result.failed[str(doc.get("image_id") if isinstance(doc, Mapping) else doc)] = str(e)
                    continue
                yield {"_op_type": "index", "_index": name, "_id": doc["image_id"], "_source": _for_es(doc)}

        with self._guard(f"bulk write to {name}"):
            for ok, item in helpers.streaming_bulk(self.client, actions(), chunk_size=batch_size,
                                                   raise_on_error=False, max_retries=2, initial_backoff=1):
                info = item.get("index", {})
                if ok:
                    result.written += 1
                else:
                    result.failed[str(info.get("_id"))] = _item_reason(info)
            if refresh:
                self.client.indices.refresh(index=name)
        return result

    def update(self, image_id: str, fields: Mapping, version: str | None = None, refresh: bool = True) -> None:
        name = self._target(version)
        validate_document({"image_id": image_id, **{k: v for k, v in fields.items() if v is not None}})
        try:
            with self._guard(f"update {image_id} in {name}"):
                self.client.update(index=name, id=image_id, doc=_for_es(fields), refresh=refresh)
        except IndexNotFound as e:
            raise DocumentNotFound(f"no document {image_id!r} in {name}") from e

    def delete(self, image_ids: Iterable[str], version: str | None = None, refresh: bool = True) -> int:
        name = self._target(version)
        actions = ({"_op_type": "delete", "_index": name, "_id": i} for i in dict.fromkeys(image_ids))
        deleted = 0
        with self._guard(f"bulk delete from {name}"):
            for ok, item in helpers.streaming_bulk(self.client, actions, raise_on_error=False):
                if ok and item.get("delete", {}).get("result") == "deleted":
                    deleted += 1
            if refresh:
                self.client.indices.refresh(index=name)
        return deleted

    def refresh(self, version: str | None = None) -> None:
        name = self._target(version)
        with self._guard(f"refresh {name}"):
            self.client.indices.refresh(index=name)

    # --- reads --------------------------------------------------------------------------------------

    def search(self, query: str, filters: Filters | None = None, k: int = 10, facets: Sequence[str] | None = None,
               version: str | None = None) -> SearchResult:
        check_k(k)
        wanted_facets = check_facets(facets)
        where = normalise_filters(filters)
        index = self.settings.index if version is None else self.index_name(version)
        filter_clauses: list[dict] = [{"terms": {name: values}} for name, values in where.items()]
        if query.strip():
            should = [{"match": {name: {"query": query, "boost": weight, "_name": name}}}
                      for name, (_, weight) in TEXT_FIELDS.items()]
            body_query = {"bool": {"should": should, "minimum_should_match": 1, "filter": filter_clauses}}
        else:  # filters only: every score 0, as in the embedded backend
            body_query = {"bool": {"filter": filter_clauses or [{"match_all": {}}]}}
        aggs = {name: {"terms": {"field": name, "size": FACET_SIZE}} for name in wanted_facets}
        with self._guard(f"search {index}"):
            response = self.client.search(index=index, query=body_query, size=k, aggs=aggs or None,
                                          track_total_hits=True, sort=["_score", {"image_id": "asc"}])
        hits = []
        for h in response["hits"]["hits"]:
            matched = set(h.get("matched_queries") or ())
            hits.append(Hit(h["_id"], float(h.get("_score") or 0.0), tuple(n for n in TEXT_FIELDS if n in matched),
                            h["_source"]))
        counts = {name: {str(b.get("key_as_string", b["key"])): int(b["doc_count"])
                         for b in response.get("aggregations", {}).get(name, {}).get("buckets", [])}
                  for name in wanted_facets}
        if response["hits"]["hits"]:
            found_version = response["hits"]["hits"][0]["_index"][len(self.settings.index) + 2:]
        else:
            found_version = version if version is not None else self.live_version()
        return SearchResult(hits, int(response["hits"]["total"]["value"]), counts, self.name, found_version)

    def retrieve(self, plan, filters: Filters | None = None, facets: Sequence[str] | None = None, depth: int = 1000,
                 version: str | None = None, facet_size: int = FACET_SIZE, state: str | None = None):
        """Execute a plan on the server (one _msearch): concept and lexical rankings, total and facets.

        The same contract as the embedded backend (indexer.query.memory), as a query DSL (indexer.query.dsl):
        a clause is a dis_max over constant_score levels; cascade probabilities are function_score
        field_value_factor over numeric score fields; exclusions are must_not clauses; ties are broken by
        image id.

        The search runs on the concrete index of the version (the live one when None: read from the alias
        at most LIVE_ALIAS_TTL_S ago, so a server may rank on the previous version for up to a second after
        another process switched it), which the result names in `version`, so that the caller reads the
        page's documents from the same version; if a reindex dropped that version in between, the alias is
        read again, once. `state` is ignored (this backend names no state: `state_token()` is None).
        """
        check_k(min(depth, MAX_RESULT_WINDOW))
        check_facets(facets)
        normalise_filters(filters)
        if not plan.negation:
            raise IndexerError("the ablation without negation reads raw report text, which only the embedded "
                               "backend keeps; run it with --backend embedded")
        for attempt in range(2):
            try:
                wanted = version if version is not None else self._recent_live_version(fresh=attempt > 0)
                return self._retrieve(plan, filters, facets, depth, wanted, facet_size)
            except IndexNotFound:
                if version is not None or attempt:
                    raise
        raise AssertionError("unreachable")

    def _recent_live_version(self, fresh: bool) -> str | None:
        """The live version as read from the alias at most LIVE_ALIAS_TTL_S ago (`fresh`: read it now)."""
        now = _clock()
        read = self._live_read
        if not fresh and read is not None and now - read[0] < LIVE_ALIAS_TTL_S:
            return read[1]
        live = self.live_version()
        self._live_read = (now, live)
        return live

    def _layout(self, version: str | None) -> tuple[str, str, bool]:
        """(version, concrete index, whether the index has dsl.GENERATED_MARKER) of a version or the live one.

        One alias read when `version` is None; the mapping is read once per concrete index. Indices
        built before the marker existed keep the slower `exists` on the score object.
        """
        name = self._target(version)
        marker = self._markers.get(name)
        if marker is None:
            with self._guard(f"read the mapping of {name}"):
                mapping = self.client.indices.get_mapping(index=name)
            marker = dsl.GENERATED_MARKER in (mapping.get(name, {}).get("mappings", {}).get("properties") or {})
            if len(self._markers) > 64:
                self._markers.clear()
            self._markers[name] = marker
        return name[len(self.settings.index) + 2:], name, marker

    def _retrieve(self, plan, filters, facets, depth, version, facet_size):
        from indexer.query.memory import Retrieval

        wanted_facets = check_facets(facets)
        where = normalise_filters(filters)
        version, index, marker = self._layout(version)
        has_scores = dsl.HAS_SCORES if marker else dsl.HAS_SCORES_OLD
        # a ranking deeper than one Elasticsearch page (index.max_result_window) cannot be asked for; the service
        # never pages past result MAX_RESULT_WINDOW, so that deep a ranking holds every page it may show
        depth = min(depth, MAX_RESULT_WINDOW)
        base_filter: list[dict] = [{"terms": {name: values}} for name, values in where.items()]
        must_not, generated_must_not = dsl.exclusions(plan, has_scores)
        concept = (dsl.concept_query(plan, generated_must_not, has_scores)
                   if plan.wants("concepts") and plan.clauses else None)
        lexical = None
        if plan.wants("lexical") and plan.lexical:
            lexical = {"bool": {"should": [{"match": {name: {"query": plan.lexical, "boost": w}}}
                                           for name, w in plan.text_fields.items()], "minimum_should_match": 1}}
        browse = not plan.clauses and not plan.lexical
        sort = ["_score", {"image_id": "asc"}]
        searches: list[tuple[str, dict]] = []

        def body(query: dict | None, size: int, **extra) -> dict:
            # no stored fields: the ids come back as sort values (image_id == _id), which spares loading
            # _id from the stored fields of every hit (at depth 200 that was most of each search's time)
            b = {"query": {"bool": {"filter": base_filter, "must_not": must_not,
                                    **({"must": [query]} if query is not None else {})}},
                 "size": size, "track_total_hits": False, "stored_fields": "_none_", **extra}
            return b

        if concept is not None:
            searches.append(("concepts", body(concept, depth, sort=sort)))
        if lexical is not None:
            if not plan.lexical_matches and concept is not None:  # lexical only re-ranks the concept matches
                lexical = {"bool": {"must": [lexical], "filter": [concept]}}
            searches.append(("lexical", body(lexical, depth, sort=sort)))
        if browse:
            searches.append(("browse", body(None, depth, sort=[{"image_id": "asc"}])))
        should = [q for q in (concept, lexical if plan.lexical_matches else None) if q is not None]
        count = {"query": {"bool": {"filter": base_filter, "must_not": must_not,
                                    **({"should": should, "minimum_should_match": 1} if should else {})}},
                 "size": 0, "track_total_hits": True,
                 "aggs": {name: {"terms": {"field": name, "size": facet_size,
                                           "order": [{"_count": "desc"}, {"_key": "asc"}]}}
                          for name in wanted_facets} or None}
        if count["aggs"] is None:
            del count["aggs"]
        lines: list[dict] = []
        for _, b in [*searches, ("count", count)]:
            lines += [{"index": index}, b]
        with self._guard(f"search {index}"):
            response = self.client.msearch(searches=lines)
        answers = response["responses"]
        for a in answers:
            if "error" in a:
                raise _answer_error(self.settings.safe_url, index, a["error"], a.get("status"))
        out = Retrieval(version=version)
        n = max(len(plan.clauses), 1)
        for (name, _), a in zip(searches, answers):
            scale = 1.0 / n if name == "concepts" else 1.0
            out.rankings[name] = [(h["sort"][-1], float(h.get("_score") or 0.0) * scale) for h in a["hits"]["hits"]]
        counted = answers[-1]
        out.total = int(counted["hits"]["total"]["value"])
        out.facets = {name: {str(b.get("key_as_string", b["key"])): int(b["doc_count"])
                             for b in counted.get("aggregations", {}).get(name, {}).get("buckets", [])}
                      for name in wanted_facets}
        out.candidates = {i for ranking in out.rankings.values() for i, _ in ranking}
        return out

    def get_many(self, image_ids: Sequence[str], version: str | None = None) -> dict[str, dict]:
        name = self._target(version)
        ids = list(dict.fromkeys(image_ids))
        out: dict[str, dict] = {}
        with self._guard(f"get documents from {name}"):
            for start in range(0, len(ids), 1000):
                response = self.client.mget(index=name, ids=ids[start:start + 1000])
                out.update({d["_id"]: d["_source"] for d in response["docs"] if d.get("found")})
        return out

    def count(self, version: str | None = None) -> int:
        name = self._target(version)
        with self._guard(f"count {name}"):
            return int(self.client.count(index=name)["count"])

    def size_bytes(self, version: str | None = None) -> int:
        name = self._target(version)
        with self._guard(f"stats of {name}"):
            stats = self.client.indices.stats(index=name, metric="store")
        return int(stats["indices"][name]["primaries"]["store"]["size_in_bytes"])

    def record_part(self, version: str, part: str, stats: Mapping) -> dict[str, dict]:
        self.index_name(version)
        with self._guard(f"record build part {part} of {version}"):
            if not self.client.indices.exists(index=self._parts_index):
                with contextlib.suppress(ApiError):  # another worker may create it first
                    self.client.indices.create(index=self._parts_index, mappings={"properties": {
                        "version": {"type": "keyword"}, "part": {"type": "keyword"},
                        "stats": {"type": "object", "enabled": False}}})
            self.client.index(index=self._parts_index, id=f"{version}/{part}", refresh=True,
                              document={"version": version, "part": part, "stats": dict(stats)})
            response = self.client.search(index=self._parts_index, query={"term": {"version": version}}, size=10_000)
        return {h["_source"]["part"]: h["_source"]["stats"] for h in sorted(response["hits"]["hits"],
                                                                            key=lambda h: h["_source"]["part"])}

    def close(self) -> None:
        self._connection.close()


def _answer_error(url: str, index: str, error: Mapping, status: int | None = None) -> IndexerError:
    """The error of one _msearch answer: a missing index, the server unable to answer now (5xx, 429), or else."""
    why = error.get("reason") if isinstance(error, Mapping) else error
    kind = error.get("type") if isinstance(error, Mapping) else ""
    if kind == "index_not_found_exception":
        return IndexNotFound(f"Elasticsearch at {url}: no index {index!r}; "
                             "build it with `cxrsearch reindex --backend es`")
    if status is not None and (status >= 500 or status == 429):
        return IndexUnavailable(f"Elasticsearch at {url} cannot answer now (HTTP {status}, {kind}: {why})")
    root = error.get("root_cause") if isinstance(error, Mapping) else None
    if isinstance(root, list) and root and isinstance(root[0], Mapping):  # the cause, not "all shards failed"
        kind, why = root[0].get("type", kind), root[0].get("reason", why)
    failed = IndexerError(f"Elasticsearch at {url}: search {index} failed (HTTP {status}): {kind}: {why}")
    failed.es_status = status  # the item's own status: a 4xx is a refused query, not a server (re)starting
    return failed


def _item_reason(info: Mapping) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    return str(error or f"status {info.get('status')}")
