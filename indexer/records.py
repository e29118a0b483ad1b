"""Typed records of the report corpus shared by the index and the data pipeline: MeSH terms and reports."""
from __future__ import annotations

from dataclasses import dataclass

SECTIONS = ("comparison", "indication", "findings", "impression")


@dataclass(frozen=True)
class MeshTerm:
    """One Open-i MeSH annotation such as `Calcified Granuloma/lung/upper lobe/right`.

    `head` is the first component (a MeSH descriptor or an Open-i term such as `Opacity`),
    `subheadings` the rest (organ, location, laterality, severity), all as written.
    """

    raw: str
    head: str
    subheadings: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> MeshTerm:
        """Split `Head/sub/sub` into a term; blank components are dropped."""
        text = " ".join(raw.split())
        parts = [p.strip() for p in text.split("/") if p.strip()]
        if not parts:
            raise ValueError(f"empty MeSH term {raw!r}")
        return cls(raw=text, head=parts[0], subheadings=tuple(parts[1:]))

    @property
    def key(self) -> str:
        """Lower-case canonical form, `calcified granuloma/lung/upper lobe/right`."""
        return "/".join(p.lower() for p in (self.head, *self.subheadings))

    @property
    def head_key(self) -> str:
        return self.head.lower()


@dataclass(frozen=True)
class Report:
    """One radiology report with its sections, MeSH terms and image ids."""

    report_id: str
    comparison: str | None = None
    indication: str | None = None
    findings: str | None = None
    impression: str | None = None
    mesh_major: tuple[MeshTerm, ...] = ()
    mesh_automatic: tuple[MeshTerm, ...] = ()
    image_ids: tuple[str, ...] = ()
    licence: str | None = None
    source: str = ""

    @property
    def is_normal(self) -> bool:
        return [t.key for t in self.mesh_major] == ["normal"]

    def sections(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in SECTIONS}
