"""The chest-radiograph MeSH vocabulary and the reviewed Open-i term mapping (indexer/data/*.json).

`Vocabulary.load()` reads the two committed files once. A `Concept` is what one Open-i
annotation such as `Calcified Granuloma/lung/upper lobe/right` means: the finding, the MeSH
descriptors it maps onto (and all their ancestors, for hierarchical search), the organ,
locations, laterality, severity and whatever subheadings were not recognised.
Rebuild mesh_chest.json with `make vocabulary` (scripts/build_vocabulary.py).
"""
from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from indexer.errors import UnknownTermError, VocabularyError
from indexer.records import MeshTerm, Report

DATA_DIR = Path(__file__).resolve().parent / "data"
MESH_FILE = DATA_DIR / "mesh_chest.json"
TERMS_FILE = DATA_DIR / "openi_terms.json"

KINDS = ("organ", "location", "laterality", "severity", "finding", "qualifier")
CATEGORIES = ("finding", "anatomy", "device", "procedure", "normal", "technical", "none", "unknown")


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


@dataclass(frozen=True)
class Descriptor:
    """One MeSH descriptor with its tree numbers and its parents/children inside the vocabulary."""

    name: str
    tree_numbers: tuple[str, ...]
    parents: tuple[str, ...]
    children: tuple[str, ...]

    @property
    def category(self) -> str:
        """finding (C trees), anatomy (A), device (E07 equipment, D materials), procedure (other E)."""
        letters = {n[0] for n in self.tree_numbers}
        if "C" in letters:
            return "finding"
        if "A" in letters:
            return "anatomy"
        if "D" in letters or any(n.startswith("E07") for n in self.tree_numbers):
            return "device"
        return "procedure" if "E" in letters else "finding"


@dataclass(frozen=True)
class Subheading:
    """A recognised Open-i subheading: its kind, canonical value and MeSH anatomy descriptor."""

    kind: str
    canonical: str
    mesh: str | None = None


@dataclass(frozen=True)
class Concept:
    """What one Open-i MeSH annotation means.

    `finding` is the canonical finding words ('calcified granuloma'; 'hypoinflation' for
    'Lung/hypoinflation'), None for a bare organ. `descriptors` are the MeSH descriptors of the
    finding (the organ's own descriptor when the finding has no better one), `anatomy` those of
    the organ and locations, `ancestors` all MeSH ancestors of both. `unknown` lists the
    subheadings that were not recognised; an unrecognised head gives category 'unknown'.
    """

    term: str
    finding: str | None
    category: str
    descriptors: tuple[str, ...] = ()
    anatomy: tuple[str, ...] = ()
    ancestors: tuple[str, ...] = ()
    organ: str | None = None
    locations: tuple[str, ...] = ()
    laterality: str | None = None
    severities: tuple[str, ...] = ()
    qualifiers: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


class Vocabulary:
    """MeSH hierarchy lookups and the meaning of Open-i annotations."""

    def __init__(self, descriptors: dict[str, dict], terms: dict):
        """Build from the parsed contents of mesh_chest.json ('descriptors') and openi_terms.json.

        Raises:
            VocabularyError: the mapping names a descriptor, kind or category that does not exist.
        """
        self._descriptors = {
            name: Descriptor(name, tuple(e["tree_numbers"]), tuple(e.get("parents", ())),
                             tuple(e.get("children", ())))
            for name, e in descriptors.items()}
        self._by_lower = {name.lower(): name for name in self._descriptors}
        self._terms = {_norm(k): v for k, v in terms.get("terms", {}).items()}
        self._organ_findings = {_norm(k): v for k, v in terms.get("organ_findings", {}).items()}
        self._subheadings = {_norm(k): Subheading(v["kind"], v["canonical"], v.get("mesh"))
                             for k, v in terms.get("subheadings", {}).items()}
        self._concepts: dict[str, Concept] = {}
        self._check()

    @classmethod
    def load(cls) -> Vocabulary:
        """The vocabulary from the committed data files (read once, then cached)."""
        return _load_default()

    @classmethod
    def from_files(cls, mesh_path: Path, terms_path: Path) -> Vocabulary:
        """Read a vocabulary from explicit files (the build output and the Open-i mapping)."""
        data = []
        for path in (mesh_path, terms_path):
            try:
                data.append(json.loads(Path(path).read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise VocabularyError(f"{path}: cannot read vocabulary file ({e})") from e
        return cls(data[0]["descriptors"], data[1])

    def _check(self) -> None:
        named = [(f"term {k!r}", d) for k, e in self._terms.items() for d in e["descriptors"]]
        named += [(f"term {k!r} variant", d) for k, e in self._terms.items()
                  for ds in e.get("variants", {}).values() for d in ds]
        named += [(f"organ finding {k!r}", d) for k, e in self._organ_findings.items()
                  for d in e["descriptors"]]
        named += [(f"subheading {k!r}", s.mesh) for k, s in self._subheadings.items() if s.mesh]
        missing = [f"{where}: {d!r}" for where, d in named if d not in self._descriptors]
        bad = [f"subheading {k!r}: kind {s.kind!r}" for k, s in self._subheadings.items()
               if s.kind not in KINDS]
        bad += [f"{k!r}: category {e['category']!r}" for k, e in
                [*self._terms.items(), *self._organ_findings.items()] if e["category"] not in CATEGORIES]
        if missing or bad:
            raise VocabularyError(
                "Open-i mapping does not fit the MeSH vocabulary (rebuild with `make vocabulary`): "
                + "; ".join(missing + bad) + f". Kinds: {KINDS}; categories: {CATEGORIES}")

    # --- MeSH hierarchy

    def __contains__(self, name: str) -> bool:
        return _norm(name) in self._by_lower

    def __len__(self) -> int:
        return len(self._descriptors)

    def names(self) -> list[str]:
        """Every descriptor name, sorted."""
        return sorted(self._descriptors)

    def descriptor(self, name: str) -> Descriptor:
        """The descriptor called `name` (case-insensitive).

        Raises:
            UnknownTermError: no such descriptor; the message suggests close names.
        """
        key = _norm(name)
        if key not in self._by_lower:
            close = difflib.get_close_matches(key, [*self._by_lower, *self._terms], n=3, cutoff=0.75)
            raise UnknownTermError(name, [self._by_lower.get(c, c) for c in close])
        return self._descriptors[self._by_lower[key]]

    def ancestors(self, name: str) -> list[str]:
        """All ancestors of a descriptor over all its tree positions, nearest first."""
        return self._walk(self.descriptor(name).name, "parents")

    def descendants(self, name: str) -> list[str]:
        """All descendants of a descriptor inside the vocabulary, nearest first."""
        return self._walk(self.descriptor(name).name, "children")

    def _walk(self, start: str, direction: str) -> list[str]:
        seen, order, frontier = {start}, [], [start]
        while frontier:
            step = []
            for name in frontier:
                for nxt in getattr(self._descriptors[name], direction):
                    if nxt not in seen:
                        seen.add(nxt)
                        step.append(nxt)
            order.extend(step)
            frontier = step
        return order

    # --- Open-i annotations

    def subheading(self, text: str) -> Subheading | None:
        """What an Open-i subheading ('upper lobe', 'right', 'mild', 'Aorta, Thoracic') is, if known."""
        key = _norm(text)
        if key in self._subheadings:
            return self._subheadings[key]
        name = self._by_lower.get(key)
        if name and self._descriptors[name].category == "anatomy":
            return Subheading("organ", key, name)
        return None

    def find(self, text: str) -> Concept | None:
        """Case-insensitive lookup of a descriptor name, an Open-i term or a whole annotation.

        'pulmonary atelectasis', 'Opacity' and 'Lung/hypoinflation' all give a Concept; a head
        that is neither a descriptor nor an Open-i term gives None.
        """
        try:
            term = MeshTerm.parse(text)
        except ValueError:
            return None
        concept = self.concept(term)
        return None if concept.category == "unknown" else concept

    def concept(self, term: MeshTerm) -> Concept:
        """The meaning of one Open-i annotation (never raises; see Concept.unknown/category)."""
        key = "/".join(_norm(p) for p in (term.head, *term.subheadings))
        if key not in self._concepts:
            self._concepts[key] = self._concept(term, key)
        return self._concepts[key]

    def _concept(self, term: MeshTerm, key: str) -> Concept:
        head = _norm(term.head)
        subs = [_norm(s) for s in term.subheadings]
        entry = self._terms.get(head)
        if entry is not None:
            descriptors, category = list(entry["descriptors"]), entry["category"]
            variants = entry.get("variants", {})
            chosen = next((s for s in subs if s in variants), None)
            if chosen is not None:
                descriptors = list(variants[chosen])
        elif head in self._by_lower:
            name = self._by_lower[head]
            descriptors, category = [name], self._descriptors[name].category
        else:
            descriptors, category = [], "unknown"

        head_is_organ = category == "anatomy"
        organ_keys = [head] if head_is_organ else []
        organ = self._canonical(head) if head_is_organ else None
        finding = None if head_is_organ else head
        finding_key = None
        anatomy = list(descriptors) if head_is_organ else []
        locations, lateralities, severities, qualifiers, unknown = [], [], [], [], []
        for raw, sub in zip(term.subheadings, subs):
            info = self.subheading(sub)
            if info is None:
                unknown.append(raw)
                continue
            if info.mesh:
                anatomy.append(info.mesh)
            if info.kind == "organ":
                organ_keys.append(sub)
                if organ is None:
                    organ = info.canonical
                else:
                    locations.append(info.canonical)
            elif info.kind == "location":
                locations.append(info.canonical)
            elif info.kind == "laterality":
                lateralities.append(info.canonical)
            elif info.kind == "severity":
                severities.append(info.canonical)
            elif info.kind == "finding" and head_is_organ and finding_key is None:
                finding, finding_key = info.canonical, sub
            else:
                qualifiers.append(info.canonical)

        if head_is_organ and finding_key is not None:
            category = "finding"
            for organ_key in reversed(organ_keys):  # most specific organ first
                pair = self._organ_findings.get(f"{organ_key}/{finding_key}")
                if pair is not None:
                    descriptors, category = list(pair["descriptors"]), pair["category"]
                    break

        laterality = None
        if lateralities:
            laterality = lateralities[0] if len(set(lateralities)) == 1 else "bilateral"
        descriptors, anatomy = _unique(descriptors), _unique(anatomy)
        own = set(descriptors) | set(anatomy)
        ancestors = sorted({a for d in own for a in self._walk(d, "parents")} - own)
        return Concept(term=key, finding=finding, category=category, descriptors=tuple(descriptors),
                       anatomy=tuple(anatomy), ancestors=tuple(ancestors), organ=organ,
                       locations=tuple(_unique(locations)), laterality=laterality,
                       severities=tuple(_unique(severities)), qualifiers=tuple(_unique(qualifiers)),
                       unknown=tuple(unknown))

    def organ_findings(self) -> list[tuple[str, str]]:
        """The reviewed organ + finding pairs ('heart', 'enlarged'), as canonical organ and finding names."""
        out = []
        for key in self._organ_findings:
            organ, _, finding = key.rpartition("/")
            info = self._subheadings.get(finding)
            out.append((self._canonical(organ), info.canonical if info else finding))
        return out

    def _canonical(self, key: str) -> str:
        info = self._subheadings.get(key)
        return info.canonical if info else key

    def coverage(self, reports: Iterable[Report], field: str = "mesh_major", top: int = 20) -> dict:
        """How many term occurrences of `reports` the vocabulary recognises.

        Args:
            reports: the corpus.
            field: 'mesh_major' (the reviewed annotations) or 'mesh_automatic'.
            top: how many of the most frequent unrecognised names to list.

        Returns:
            Counts and percentages for head terms, subheadings, both together ('total') and
            whole terms with nothing unrecognised, plus 'unrecognised': [{name, kind, count}].
        """
        n = Counter()
        missed: Counter = Counter()
        for report in reports:
            for term in getattr(report, field):
                concept = self.concept(term)
                head_ok = concept.category != "unknown"
                n["heads"] += 1
                n["heads_recognised"] += head_ok
                n["subheadings"] += len(term.subheadings)
                n["subheadings_recognised"] += len(term.subheadings) - len(concept.unknown)
                n["terms"] += 1
                n["terms_recognised"] += head_ok and not concept.unknown
                if not head_ok:
                    missed[("head", _norm(term.head))] += 1
                for sub in concept.unknown:
                    missed[("subheading", _norm(sub))] += 1
        n["total"] = n["heads"] + n["subheadings"]
        n["total_recognised"] = n["heads_recognised"] + n["subheadings_recognised"]
        result: dict = {"field": field}
        for part in ("heads", "subheadings", "total", "terms"):
            result[part] = n[part]
            result[f"{part}_recognised"] = n[f"{part}_recognised"]
            result[f"{part}_percent"] = round(100.0 * n[f"{part}_recognised"] / n[part], 2) if n[part] else 100.0
        result["unrecognised"] = [{"name": name, "kind": kind, "count": count}
                                  for (kind, name), count in missed.most_common(top)]
        return result


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@lru_cache(maxsize=1)
def _load_default() -> Vocabulary:
    return Vocabulary.from_files(MESH_FILE, TERMS_FILE)
