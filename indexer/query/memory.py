"""The embedded backend's ranker: one index version held in memory as numpy arrays, for millisecond search.

SQLite stays the store (the catalogue and its FTS5 index); this is a read-only snapshot built from
its stored documents on the first search of a version (about a second for 7,470 images) and kept
while the version is live. It executes a `RankPlan` (indexer.query.plan):

- concept atoms as postings (atom -> rows) per source field; cascade group scores and concept
  probabilities as sparse/dense float arrays;
- BM25F over the text fields of each source (k1 = 1.2, b = 0.75, per-field length normalisation and
  the field weights of indexer.documents), with the same analysis as both text backends
  (indexer.text.base.tokenize);
- filters as postings, facets as a sparse document x value matrix.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from indexer.concepts import concept_atoms
from indexer.documents import ATOM_FIELDS, FILTER_FIELDS, keyword_values
from indexer.query.plan import (
    EXCLUDE_MIN_PROBABILITY,
    GENERATED_IN_ALL,
    GENERATED_MIN_SCORE,
    SEVERITY_BONUS,
    TEXT_WEIGHT,
    ClausePlan,
    RankPlan,
    generated_clause_score,
)
from indexer.text.base import tokenize

K1, B = 1.2, 0.75
FACET_SIZE = 20
SNAPSHOT_FORMAT = 1


@dataclass
class Retrieval:
    """What a backend returns for a plan: each retriever's ranking, the candidate count and facet counts."""

    rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # retriever -> [(id, score)]
    total: int = 0
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    candidates: object | None = None       # supports `image_id in candidates`; None when unknown
    version: str | None = None             # the index version ranked (read the page's documents from it)


class _RowSet:
    """The candidate set of one retrieval: `image_id in candidates` without building a set of ids."""

    def __init__(self, row_of: Mapping[str, int], mask: np.ndarray):
        self._row_of, self._mask = row_of, mask

    def __contains__(self, image_id: object) -> bool:
        row = self._row_of.get(image_id)  # type: ignore[arg-type]
        return row is not None and bool(self._mask[row])

    def __len__(self) -> int:
        return int(self._mask.sum())


class _BM25:
    """BM25F over a set of weighted text fields: a (documents x terms) matrix of term scores."""

    @classmethod
    def from_parts(cls, vocab: dict[str, int], matrix: sparse.csc_matrix) -> _BM25:
        self = cls.__new__(cls)
        self.vocab, self.matrix = vocab, matrix
        return self

    def __init__(self, docs: Sequence[Mapping], fields: Mapping[str, float], text_of=None):
        text_of = text_of or (lambda doc, name: doc.get(name) or "")
        n = len(docs)
        vocab: dict[str, int] = {}
        per_field_tf: list[list[dict[int, int]]] = []
        lengths = np.zeros((len(fields), n), dtype=np.float32)
        for fi, name in enumerate(fields):
            rows = []
            for di, doc in enumerate(docs):
                toks = tokenize(text_of(doc, name))
                lengths[fi, di] = len(toks)
                tf: dict[int, int] = defaultdict(int)
                for t in toks:
                    tf[vocab.setdefault(t, len(vocab))] += 1
                rows.append(tf)
            per_field_tf.append(rows)
        avg = np.maximum(lengths.mean(axis=1), 1e-9) if n else np.ones(len(fields))  # no documents: no mean
        weights = list(fields.values())
        data, indices, indptr = [], [], [0]
        df = np.zeros(len(vocab), dtype=np.float64)
        for di in range(n):
            combined: dict[int, float] = defaultdict(float)
            for fi in range(len(weights)):
                norm = 1.0 - B + B * lengths[fi, di] / avg[fi]
                for t, c in per_field_tf[fi][di].items():
                    combined[t] += weights[fi] * c / norm
            for t, tf in combined.items():
                indices.append(t)
                data.append(tf)
                df[t] += 1
            indptr.append(len(indices))
        tf_matrix = sparse.csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                                       np.asarray(indptr, dtype=np.int64)), shape=(n, max(len(vocab), 1)))
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf_matrix.data = (tf_matrix.data * (K1 + 1.0) / (tf_matrix.data + K1)).astype(np.float32)
        self.matrix = sparse.csc_matrix(tf_matrix.multiply(idf[None, :]) if len(vocab) else tf_matrix)
        self.vocab = vocab

    def scores(self, query: str) -> np.ndarray | None:
        """(N,) BM25F scores of the query's words (OR-ed), or None when no word is in the index."""
        cols = [self.vocab[t] for t in dict.fromkeys(tokenize(query)) if t in self.vocab]
        if not cols:
            return None
        m = self.matrix  # CSC: each word's column read directly (scipy's fancy column indexing cost 5x more)
        spans = [(m.indptr[c], m.indptr[c + 1]) for c in cols]
        rows = np.concatenate([m.indices[a:b] for a, b in spans])
        weights = np.concatenate([m.data[a:b] for a, b in spans])
        return np.bincount(rows, weights=weights, minlength=m.shape[0]).astype(np.float32)


class MemoryIndex:
    """One index version in memory (see the module docstring).

    Built from the stored documents (`MemoryIndex(docs)`), or loaded from a snapshot file written by
    `save` (`MemoryIndex.load(path, documents=...)`): the arrays only, so that a one-shot command
    does not decode every document; `documents` then fetches the few documents a caller needs.
    """

    def _set_ids(self, ids: list[str]) -> None:
        self.ids = ids
        self.n = len(ids)
        self.row_of = {image_id: row for row, image_id in enumerate(ids)}
        self.id_array = np.asarray(ids, dtype=object)
        self.order = np.argsort(self.id_array).astype(np.int64)  # tie-break by image id
        self.rank_of_id = np.empty(self.n, dtype=np.int64)
        self.rank_of_id[self.order] = np.arange(self.n)
        self.ids_in_order = bool((self.order == np.arange(self.n)).all())  # rows sorted by id (as stored): `_top`
        self._zeros = np.zeros(self.n, dtype=np.float32)
        self._zeros.flags.writeable = False

    def __init__(self, docs: Sequence[Mapping]):
        self._set_ids([d["image_id"] for d in docs])
        self._docs: Sequence[Mapping] | None = docs
        self._load_docs = None
        self.atoms: dict[str, dict[str, np.ndarray]] = {}
        for name in ATOM_FIELDS:
            postings: dict[str, list[int]] = defaultdict(list)
            for row, doc in enumerate(docs):
                for a in doc.get(name, ()):
                    postings[a].append(row)
            self.atoms[name] = {a: np.asarray(r, dtype=np.int64) for a, r in postings.items()}
        group_rows: dict[str, list[int]] = defaultdict(list)
        group_vals: dict[str, list[float]] = defaultdict(list)
        key_rows: dict[str, list[int]] = defaultdict(list)
        key_vals: dict[str, list[float]] = defaultdict(list)
        self.has_probabilities = np.zeros(self.n, dtype=bool)
        for row, doc in enumerate(docs):
            for g, p in (doc.get("generated_scores") or {}).items():
                group_rows[g].append(row)
                group_vals[g].append(p)
            probs = doc.get("concept_probabilities") or {}
            if probs:
                self.has_probabilities[row] = True
            for k, p in probs.items():
                if k.startswith(("locations:", "laterality:")):
                    key_rows[k].append(row)
                    key_vals[k].append(p)
        self.group_scores = {g: (np.asarray(group_rows[g], dtype=np.int64), np.asarray(group_vals[g], dtype=np.float32))
                             for g in group_rows}
        self.all_probabilities = bool(self.has_probabilities.all())
        self.key_probs = {}
        for k in key_rows:
            dense = np.zeros(self.n, dtype=np.float32)
            dense[np.asarray(key_rows[k])] = key_vals[k]
            self.key_probs[k] = dense
        self.postings: dict[tuple[str, str], np.ndarray] = {}
        values: dict[str, dict[str, int]] = {}
        coords: dict[str, tuple[list[int], list[int]]] = {}
        for name in FILTER_FIELDS:
            if name in ATOM_FIELDS:
                continue
            vals, (rows, cols) = values.setdefault(name, {}), coords.setdefault(name, ([], []))
            post: dict[str, list[int]] = defaultdict(list)
            for row, doc in enumerate(docs):
                for v in dict.fromkeys(keyword_values(doc, name)):
                    post[v].append(row)
                    rows.append(row)
                    cols.append(vals.setdefault(v, len(vals)))
            for v, r in post.items():
                self.postings[(name, v)] = np.asarray(r, dtype=np.int64)
        self.facet_values = {name: list(vals) for name, vals in values.items()}
        self.facet_entries = {name: (np.asarray(coords[name][0], dtype=np.int64),
                                     np.asarray(coords[name][1], dtype=np.int64))
                              for name in values}
        self._facet_counters: dict[tuple[str, ...], _FacetCounter] = {}
        self._bm25: dict[tuple, _BM25] = {}

    def _facet_counter(self, names: tuple[str, ...]) -> _FacetCounter:
        """The counter of these facet fields (built on first use per set of fields; the API asks for one set)."""
        key = tuple(sorted(names))
        counter = self._facet_counters.get(key)
        if counter is None:
            counter = _FacetCounter(self.n, {name: (self.facet_entries[name], self.facet_values[name]) for name in key})
            if len(self._facet_counters) >= 8:
                self._facet_counters.clear()
            self._facet_counters[key] = counter
        return counter

    @classmethod
    def from_documents(cls, docs: Iterable[Mapping]) -> MemoryIndex:
        return cls(list(docs))

    # --- the snapshot file --------------------------------------------------------------------------

    def save(self, path, stamp: str, bm25_fields: Sequence[Mapping[str, float]] = ()) -> None:
        """Write the arrays (and the BM25 of each field set in `bm25_fields`) to one .npz; `stamp` says
        which state of the catalogue they describe (`load` refuses another)."""
        from indexer.files import atomic_path

        arrays: dict[str, np.ndarray] = {"has_probabilities": self.has_probabilities}
        meta: dict = {"format": SNAPSHOT_FORMAT, "stamp": stamp, "ids": self.ids, "atoms": {}, "bm25": [],
                      "postings": None, "groups": None, "keys": list(self.key_probs), "facets": {}}
        for name, table in self.atoms.items():
            if name.startswith("_"):
                continue
            meta["atoms"][name] = _pack(arrays, f"atoms.{name}", table)
        meta["postings"] = _pack(arrays, "postings", {f"{f}\x1f{v}": r for (f, v), r in self.postings.items()})
        meta["groups"] = _pack(arrays, "groups", {g: rows for g, (rows, _) in self.group_scores.items()})
        arrays["groups.vals"] = (np.concatenate([v for _, v in self.group_scores.values()])
                                 if self.group_scores else np.zeros(0, dtype=np.float32))
        arrays["keys"] = (np.stack([self.key_probs[k] for k in meta["keys"]]) if self.key_probs
                          else np.zeros((0, self.n), dtype=np.float32))
        for name, (rows, cols) in self.facet_entries.items():
            meta["facets"][name] = self.facet_values[name]
            arrays[f"facet.{name}.rows"], arrays[f"facet.{name}.cols"] = rows, cols
        for i, fields in enumerate(bm25_fields):
            index = self.bm25(fields)
            m = index.matrix
            meta["bm25"].append({"fields": list(fields.items()), "vocab": list(index.vocab)})
            arrays[f"bm25.{i}.data"] = m.data
            arrays[f"bm25.{i}.indices"] = m.indices
            arrays[f"bm25.{i}.indptr"] = m.indptr
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path, stamp: str, documents=None) -> MemoryIndex | None:
        """The snapshot at `path` if it describes catalogue state `stamp`, else None.

        Args:
            documents: a callable returning every stored document in row order, for what needs them
                (the page's documents come through it too, when it takes ids).
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if meta.get("format") != SNAPSHOT_FORMAT or meta.get("stamp") != stamp:
                    return None
                data = {k: z[k] for k in z.files if k != "meta"}
        except (OSError, ValueError, KeyError):
            return None
        self = cls.__new__(cls)
        self._set_ids(meta["ids"])
        self._docs, self._load_docs = None, documents
        self.atoms = {name: _unpack(data, f"atoms.{name}", keys) for name, keys in meta["atoms"].items()}
        self.postings = {tuple(k.split("\x1f", 1)): r for k, r in _unpack(data, "postings", meta["postings"]).items()}
        rows = _unpack(data, "groups", meta["groups"])
        vals, offsets = data["groups.vals"], data["groups.offsets"]
        self.group_scores = {g: (rows[g], vals[offsets[i]:offsets[i + 1]]) for i, g in enumerate(meta["groups"])}
        self.key_probs = {k: data["keys"][i] for i, k in enumerate(meta["keys"])}
        self.has_probabilities = data["has_probabilities"]
        self.all_probabilities = bool(self.has_probabilities.all())
        self.facet_values = meta["facets"]
        self.facet_entries = {name: (data[f"facet.{name}.rows"], data[f"facet.{name}.cols"]) for name in meta["facets"]}
        self._facet_counters = {}
        self._bm25 = {}
        for i, entry in enumerate(meta["bm25"]):
            vocab = {t: j for j, t in enumerate(entry["vocab"])}
            matrix = sparse.csc_matrix((data[f"bm25.{i}.data"], data[f"bm25.{i}.indices"], data[f"bm25.{i}.indptr"]),
                                       shape=(self.n, max(len(vocab), 1)))
            self._bm25[(tuple((f, w) for f, w in entry["fields"]), False)] = _BM25.from_parts(vocab, matrix)
        return self

    def _all_docs(self) -> Sequence[Mapping]:
        if self._docs is None:
            if self._load_docs is None:
                raise RuntimeError("this snapshot was loaded without a way to read the documents")
            self._docs = self._load_docs()
        return self._docs

    # --- pieces -------------------------------------------------------------------------------------

    def bm25(self, fields: Mapping[str, float], raw: bool = False) -> _BM25:
        """The BM25F index of these fields (built on first use); `raw` reads the report sections as written."""
        key = (tuple(fields.items()), raw)
        if key not in self._bm25:
            text_of = None
            if raw:
                def text_of(doc, name):
                    written = doc.get("sections") or {}
                    section = name.split("_", 1)[1]
                    if name.startswith("report_"):
                        return written.get(section, doc.get(name) or "")
                    return doc.get(name) or ""
            self._bm25[key] = _BM25(self._all_docs(), fields, text_of)
        return self._bm25[key]

    def _postings(self, field_name: str, atoms: Iterable[str], raw_mentions: bool = False) -> list[np.ndarray]:
        table = self._mention_atoms() if raw_mentions else self.atoms[field_name]
        return [table[a] for a in atoms if a in table]

    def _rows(self, field_name: str, atoms: Iterable[str], raw_mentions: bool = False) -> np.ndarray:
        """Rows having any of the atoms (may repeat a row)."""
        found = self._postings(field_name, atoms, raw_mentions)
        if not found:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(found) if len(found) > 1 else found[0]

    def _mention_atoms(self) -> dict[str, np.ndarray]:
        """Atoms of every text mention whatever its assertion (the ablation without negation), built on first use."""
        if "_all_mentions" not in self.atoms:
            from indexer.documents import TEXT, _concept, _parse_term
            from indexer.vocabulary import Vocabulary

            vocab = Vocabulary.load()
            postings: dict[str, list[int]] = defaultdict(list)
            for row, doc in enumerate(self._all_docs()):
                seen = set()
                for m in doc.get("mentions", ()):
                    term = _parse_term(m["term"])
                    if term is None:
                        continue
                    for a in concept_atoms(_concept(term, TEXT, vocab)):
                        if a not in seen:
                            seen.add(a)
                            postings[a].append(row)
            self.atoms["_all_mentions"] = {a: np.asarray(r, dtype=np.int64) for a, r in postings.items()}
        return self.atoms["_all_mentions"]

    def filter_mask(self, filters: Mapping[str, Sequence[str]]) -> np.ndarray:
        """(N,) bool: documents that pass every filter (values of one field OR-ed)."""
        mask = np.ones(self.n, dtype=bool)
        for name, wanted in filters.items():
            if name in ATOM_FIELDS:
                rows = self._rows(name, wanted)
            else:
                found = [self.postings[(name, v)] for v in wanted if (name, v) in self.postings]
                rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
            keep = np.zeros(self.n, dtype=bool)
            keep[rows] = True
            mask &= keep
        return mask

    def facets(self, mask: np.ndarray, names: Sequence[str], size: int = FACET_SIZE) -> dict[str, dict[str, int]]:
        """Value counts of each facet field over the documents in `mask` (the `size` most frequent; ties by name)."""
        return self._facets(mask, np.flatnonzero(mask), names, size)

    def _facets(self, mask: np.ndarray, rows: np.ndarray, names: Sequence[str],
                size: int) -> dict[str, dict[str, int]]:
        """`facets`, given the mask's rows too (the ranker has them)."""
        known = tuple(dict.fromkeys(name for name in names if name in self.facet_entries))
        out: dict[str, dict[str, int]] = {name: {} for name in names}
        if not known or not len(rows):
            return out
        out.update(self._facet_counter(known).top(mask, size, rows))
        return out

    def report_clause(self, clause: ClausePlan, raw_mentions: bool = False) -> np.ndarray:
        """(N,) the clause's score from the radiologist's MeSH atoms and the report text's positive mentions."""
        score = np.zeros(self.n, dtype=np.float32)
        # a document scores its best (level, field) weight: the weights' postings are written weakest first, so
        # that a stronger one overwrites (one assignment each, where a maximum per postings took three passes)
        weighted = []
        for level in clause.levels:
            for name, w in (("text_atoms", TEXT_WEIGHT), ("report_atoms", 1.0)):
                value = level.weight * w
                weighted.extend((value, rows) for rows in self._postings(name, level.atoms,
                                                                         raw_mentions and name == "text_atoms"))
        weighted.sort(key=lambda pair: pair[0])  # stable: equal weights write the same value in any order
        for value, rows in weighted:
            score[rows] = value
        if clause.bonus:  # the severity asked for, on a document that matches the clause
            rows = np.concatenate([self._rows("report_atoms", clause.bonus), self._rows("text_atoms", clause.bonus)])
            rows = rows[score[rows] > 0]
            score[rows] = np.minimum(score[rows] + np.float32(SEVERITY_BONUS), np.float32(1.0 + SEVERITY_BONUS))
        return score

    def generated_clause(self, clause: ClausePlan) -> np.ndarray:
        """(N,) the clause's score from pixels: concept-head probabilities, else the hard annotation's atoms."""
        g = np.zeros(self.n, dtype=np.float32)
        for group in clause.groups:
            if group in self.group_scores:
                rows, vals = self.group_scores[group]
                g[rows] = np.maximum(g[rows], vals)
        loc = None
        if clause.location_keys:
            loc = self._zeros
            for k in clause.location_keys:
                if k in self.key_probs:
                    loc = np.maximum(loc, self.key_probs[k])
        side = self.key_probs.get(clause.side_key, self._zeros) if clause.side_key else None
        score = generated_clause_score(clause, g, loc, side)
        if self.all_probabilities:
            return score.astype(np.float32, copy=False)
        hard = np.zeros(self.n, dtype=np.float32)  # images annotated by a checkpoint without a concept head
        for level in clause.levels:
            for rows in self._postings("generated_atoms", level.atoms):
                hard[rows] = np.maximum(hard[rows], level.weight)
        return np.where(self.has_probabilities, score, hard).astype(np.float32)

    # --- the plan -----------------------------------------------------------------------------------

    def rank(self, plan: RankPlan, filters: Mapping[str, Sequence[str]] | None = None,
             facets: Sequence[str] = (), depth: int = 1000, facet_size: int = FACET_SIZE) -> Retrieval:
        """Execute a plan: rankings of the concept and lexical retrievers, candidate count and facets.

        A new query's whole search costs about a millisecond, so this works in few passes over the (N,) arrays:
        no mask at all without filters or exclusions, sums in place, and the rankings read their scores where
        they are positive instead of copying them under the candidate mask."""
        mask = self.filter_mask(filters) if filters else None  # None: every document passes
        concept = None
        report = None
        use_concepts = plan.wants("concepts") and plan.clauses
        if use_concepts:
            generated = None
            for clause in plan.clauses:
                if plan.uses_report:
                    score = self.report_clause(clause, raw_mentions=not plan.negation)
                    report = score if report is None else np.add(report, score, out=report)
                if plan.uses_generated:
                    score = self.generated_clause(clause)
                    generated = score if generated is None else np.add(generated, score, out=generated)
            if len(plan.clauses) > 1:
                for summed in (report, generated):
                    if summed is not None:
                        summed /= len(plan.clauses)
            if generated is not None:
                generated[generated < GENERATED_MIN_SCORE - 1e-6] = 0.0
            if plan.source == "report":
                concept = report
            elif plan.source == "generated":
                concept = generated
            else:
                concept = np.maximum(report, GENERATED_IN_ALL * generated)
        for clause in plan.exclusions:
            if mask is None:
                mask = np.ones(self.n, dtype=bool)
            if plan.uses_report:  # the report states the finding
                mask[self._rows("report_atoms", clause.levels[0].atoms)] = False
                mask[self._rows("text_atoms", clause.levels[0].atoms)] = False
            if plan.uses_generated:  # the cascade sees it
                seen = self.generated_clause(clause) >= EXCLUDE_MIN_PROBABILITY
                if plan.source == "generated":
                    mask &= ~seen
                elif use_concepts:
                    concept = np.where(seen & (concept > report), report, concept)
        lexical = None
        if plan.wants("lexical") and plan.lexical:
            lexical = self.bm25(plan.text_fields, raw=not plan.negation).scores(plan.lexical)
        if not plan.clauses and not plan.lexical and not plan.exclusions:
            candidates = mask if mask is not None else np.ones(self.n, dtype=bool)  # no query words: filters only
        else:
            if not plan.clauses and not plan.lexical:  # only negations: everything not excluded
                matched = np.ones(self.n, dtype=bool)
            else:
                matched = concept > 0 if concept is not None else np.zeros(self.n, dtype=bool)
                if lexical is not None and plan.lexical_matches:
                    matched |= lexical > 0
            candidates = matched if mask is None else np.logical_and(matched, mask, out=matched)
        rows = np.flatnonzero(candidates)
        out = Retrieval(total=len(rows), facets=self._facets(candidates, rows, facets, facet_size))
        if use_concepts:  # a positive concept score makes a candidate unless a filter or exclusion says otherwise
            out.rankings["concepts"] = self._top(concept, depth, None if mask is None else candidates)
        if lexical is not None:  # a lexical score alone does not when the concepts decide (lexical_matches false)
            whole = mask is None and plan.lexical_matches
            out.rankings["lexical"] = self._top(lexical, depth, None if whole else candidates)
        if not out.rankings or (not plan.clauses and not plan.lexical):
            out.rankings["browse"] = self._browse(candidates, depth)
        out.candidates = _RowSet(self.row_of, candidates)
        return out

    def _top(self, scores: np.ndarray, depth: int, within: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The best `depth` documents with a positive score (among `within`, a bool mask, when given), ties broken
        by image id."""
        nz = np.flatnonzero(scores > 0)  # the bool mask's nonzero: the floats' own took 8x as long (numpy 2.4)
        if within is not None:
            nz = nz[within[nz]]
        if not len(nz):
            return []
        values = scores[nz]
        if len(nz) > depth:  # keep every document tied with the last one kept, then cut after sorting
            cut = np.partition(values, len(nz) - depth)[len(nz) - depth]
            keep = values >= cut
            nz, values = nz[keep], values[keep]
        if self.ids_in_order:  # rows ascend by id: a stable sort by score alone breaks ties by id
            order = np.argsort(-values, kind="stable")[:depth]
        else:
            order = np.lexsort((self.rank_of_id[nz], -values))[:depth]
        ids = self.ids
        return list(zip([ids[row] for row in nz[order].tolist()], values[order].tolist()))

    @property
    def holds_documents(self) -> bool:
        """Whether this snapshot holds the stored documents (built from them; one loaded from its file does not)."""
        return self._docs is not None

    def documents(self, image_ids: Sequence[str]) -> dict[str, Mapping] | None:
        """The stored documents of those ids that exist, from memory; None when this snapshot holds none."""
        if self._docs is None:
            return None
        return {i: self._docs[self.row_of[i]] for i in image_ids if i in self.row_of}

    def _browse(self, mask: np.ndarray, depth: int) -> list[tuple[str, float]]:
        rows = self.order[mask[self.order]][:depth]
        return [(self.ids[i], 0.0) for i in rows]


class _FacetCounter:
    """Counts the values of a set of facet fields over a candidate mask, every field at once.

    Values are numbered field after field (each field's values a contiguous range). Two layouts of the
    (document, value) pairs: a (values x documents) matrix, whose product with the mask counts everything
    in one sparse product (5x faster than a bincount per field), and the values grouped by document,
    from which a few candidates' values are gathered and counted directly: below one document in
    GATHER_BELOW (the median query has about 100 candidates of 7,470) that is 3-5x faster than the
    product over every pair. The top values of every field come from one sort (field, count desc, name).
    """

    GATHER_BELOW = 8

    def __init__(self, n: int, fields: Mapping[str, tuple[tuple[np.ndarray, np.ndarray], list[str]]]):
        rows, cols, names, field_of, by_name = [], [], [], [], []
        self.slices: dict[str, tuple[int, int]] = {}
        offset = 0
        for i, (name, ((doc_rows, value_cols), values)) in enumerate(fields.items()):
            self.slices[name] = (offset, offset + len(values))
            rows.append(value_cols + offset)
            cols.append(doc_rows)
            names.extend(values)
            field_of.append(np.full(len(values), i, dtype=np.int64))
            by_name.append(np.argsort(np.argsort(np.asarray(values, dtype=object))).astype(np.int64))
            offset += len(values)
        value_ids = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        doc_ids = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        self.n, self.size = n, offset
        self.names = names
        self.field_of = np.concatenate(field_of) if field_of else np.zeros(0, dtype=np.int64)
        self.by_name = np.concatenate(by_name) if by_name else np.zeros(0, dtype=np.int64)
        self.matrix = sparse.csr_matrix((np.ones(len(value_ids), dtype=np.float32), (value_ids, doc_ids)),
                                        shape=(offset, n))
        order = np.argsort(doc_ids, kind="stable")
        self.values_by_doc = value_ids[order]
        self.doc_starts = np.searchsorted(doc_ids[order], np.arange(n + 1)).astype(np.int64)

    def counts(self, mask: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(values,) how many documents of the mask hold each value (`rows`: the mask's rows, when known)."""
        if rows is None:
            rows = np.flatnonzero(mask)
        if len(rows) * self.GATHER_BELOW >= self.n:
            return (self.matrix @ mask.astype(np.float32)).astype(np.int64)
        starts = self.doc_starts[rows]
        lengths = self.doc_starts[rows + 1] - starts
        ends = np.cumsum(lengths)
        if not len(ends) or not ends[-1]:
            return np.zeros(self.size, dtype=np.int64)
        pairs = np.arange(ends[-1]) + np.repeat(starts - (ends - lengths), lengths)
        return np.bincount(self.values_by_doc[pairs], minlength=self.size).astype(np.int64)

    def top(self, mask: np.ndarray, size: int, rows: np.ndarray | None = None) -> dict[str, dict[str, int]]:
        """Each field's `size` most frequent values over the mask (ties by name), zero counts left out."""
        counts = self.counts(mask, rows)
        order = np.lexsort((self.by_name, -counts, self.field_of))  # field by field, as the ranges are laid out
        ranked = order.tolist()
        ranked_counts = counts[order].tolist()
        names = self.names
        out = {}
        for name, (start, end) in self.slices.items():
            found = {}
            for j in range(start, min(end, start + size)):
                count = ranked_counts[j]
                if not count:
                    break
                found[names[ranked[j]]] = count
            out[name] = found
        return out


def _pack(arrays: dict[str, np.ndarray], prefix: str, table: Mapping[str, np.ndarray]) -> list[str]:
    """Store a str -> rows table as one concatenated array plus offsets; returns its keys in order."""
    keys = list(table)
    lengths = [len(table[k]) for k in keys]
    arrays[f"{prefix}.rows"] = np.concatenate([table[k] for k in keys]) if keys else np.zeros(0, dtype=np.int64)
    arrays[f"{prefix}.offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return keys


def _unpack(data: Mapping[str, np.ndarray], prefix: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    rows, offsets = data[f"{prefix}.rows"], data[f"{prefix}.offsets"]
    return {k: rows[offsets[i]:offsets[i + 1]] for i, k in enumerate(keys)}
