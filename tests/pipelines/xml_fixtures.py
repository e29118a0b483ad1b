"""Builders of Open-i style report XML for tests."""
from __future__ import annotations

SECTION_ORDER = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")


def report_xml(report_id: int | str, major: list[str], images: list[str] | None = None,
               automatic: list[str] = (), sections: dict[str, str] | None = None,
               drop_sections: tuple[str, ...] = (), extra_mesh: str = "") -> str:
    """An Open-i report in the real files' shape."""
    sections = sections or {"COMPARISON": "None.", "INDICATION": "Cough", "FINDINGS": "Heart size normal.",
                            "IMPRESSION": "No acute disease."}
    images = images if images is not None else [f"CXR{report_id}_IM-0001-1001", f"CXR{report_id}_IM-0001-2001"]
    abstract = "".join(f'<AbstractText Label="{s}">{sections.get(s, "")}</AbstractText>'
                       for s in SECTION_ORDER if s not in drop_sections)
    mesh = "".join(f"<major>{m}</major>" for m in major) + "".join(f"<automatic>{a}</automatic>" for a in automatic)
    parents = "".join(f'<parentImage id="{i}"><figureId>F1</figureId></parentImage>' for i in images)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<eCitation><meta type="rr"/><uId id="CXR{report_id}"/>'
            f'<IUXRId id="{report_id}"/><licenseType>open-access</licenseType>'
            f'<licenseURL>http://creativecommons.org/licenses/by-nc-nd/4.0/</licenseURL>'
            f'<MedlineCitation><Article><Abstract>{abstract}</Abstract></Article></MedlineCitation>'
            f'<MeSH>{mesh}{extra_mesh}</MeSH>{parents}</eCitation>')
