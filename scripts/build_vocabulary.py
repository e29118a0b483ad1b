"""Derive the chest-radiograph MeSH vocabulary (indexer/data/mesh_chest.json) from a MeSH tree file.

The project reads the committed JSON at run time; this script is only needed to rebuild it:

    .venv/bin/python scripts/build_vocabulary.py [--mesh mtrees2019.txt] [--out mesh_chest.json]

What goes in: every descriptor under one of the ROOTS subtrees below, every descriptor named
in EXTRA, every descriptor that indexer/data/openi_terms.json maps an Open-i term onto, and all
ancestors of all of their tree numbers, so that every parent resolves inside the file.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MESH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mesh" / "mtrees2019.txt"
DEFAULT_TERMS = REPO / "indexer" / "data" / "openi_terms.json"
DEFAULT_OUT = REPO / "indexer" / "data" / "mesh_chest.json"

# Tree-number prefixes whose whole subtree is kept: what a chest radiograph can show or name.
ROOTS: list[tuple[str, str]] = [
    # --- diseases and pathologic findings
    ("C08", "Respiratory Tract Diseases: lung, pleura, airway and mediastinal diseases"),
    ("C14.280", "Heart Diseases: cardiomegaly, heart failure, pericardial effusion"),
    ("C14.240", "Cardiovascular Abnormalities: congenital heart and vessel defects"),
    ("C14.907.055", "Aneurysm, incl. aortic aneurysm"),
    ("C14.907.109", "Aortic Diseases"),
    ("C14.907.137", "Arterial Occlusive Diseases: atherosclerosis"),
    ("C14.907.355", "Embolism and Thrombosis: pulmonary embolism"),
    ("C14.907.474", "Hyperemia: vascular (pulmonary) congestion"),
    ("C14.907.489", "Hypertension, incl. pulmonary hypertension"),
    ("C04.588.894", "Thoracic Neoplasms: lung, mediastinal, pleural, heart neoplasms"),
    ("C05.116", "Bone Diseases: scoliosis, kyphosis, spondylosis, osteophyte, DISH, osteoporosis"),
    ("C05.550", "Joint Diseases: arthritis, osteoarthritis, joint dislocations"),
    ("C05.660", "Musculoskeletal Abnormalities: funnel chest, pectus carinatum"),
    ("C26.404", "Fractures, Bone: rib, clavicle, vertebral fractures"),
    ("C26.891", "Thoracic Injuries"),
    ("C26.392", "Foreign Bodies"),
    ("C18.452.174.130", "Calcinosis, incl. vascular calcification"),
    ("C23.300", "Pathological Conditions, Anatomical: hernia (hiatal), cysts, dilatation, blister"),
    ("C23.550.325", "Emphysema: subcutaneous, mediastinal"),
    ("C23.550.355", "Fibrosis, incl. cicatrix (scarring)"),
    ("C23.550.382", "Granuloma"),
    ("C23.550.823", "Sclerosis"),
    ("C23.888.277", "Edema"),
    ("C15.604.338", "Lymphadenopathy"),
    # --- anatomy seen on a chest radiograph
    ("A04", "Respiratory System: lung, bronchi, alveoli, pleura, trachea"),
    ("A01.923.761", "Thorax: thoracic cavity, mediastinum, pleural cavity, thoracic wall"),
    ("A07.541", "Heart: atria, ventricles, valves, pericardium"),
    ("A07.015.114.056", "Aorta: thoracic and abdominal"),
    ("A07.015.114.715", "Pulmonary Artery"),
    ("A07.015.114.269", "Coronary Vessels"),
    ("A07.015.908.713", "Pulmonary Veins"),
    ("A07.015.908.949", "Venae Cavae"),
    ("A07.015.908.106", "Azygos Vein"),
    ("A02.835.232.834", "Spine: cervical, thoracic, lumbar vertebrae, intervertebral discs"),
    ("A02.835.232.570", "Rib Cage: ribs, sternum"),
    ("A02.835.232.087.227", "Clavicle"),
    ("A02.835.232.087.783", "Scapula"),
    ("A02.835.232.087.090.400", "Humerus"),
    ("A01.378.800.750", "Shoulder"),
    ("A02.835.583.748", "Shoulder Joint"),
    ("A02.633.567.900.300", "Diaphragm"),
    ("A10.549.400", "Lymph Nodes"),
    ("A01.236", "Breast and nipples"),
    ("A01.598", "Neck"),
    ("A01.923.047", "Abdomen (upper abdomen is on the film)"),
    ("A03.556.875.500", "Esophagus"),
    ("A10.165.114", "Adipose Tissue"),
    # --- devices, materials and procedures visible on the film
    ("E07.132", "Catheters, incl. indwelling catheters"),
    ("E07.695", "Prostheses and Implants: stents, breast implants, valves, implanted electrodes"),
    ("E07.305.250", "Electrodes: pacemakers, defibrillators"),
    ("E07.858.700", "Surgical Instruments: surgical staplers"),
    ("E02.585", "Intubation: endotracheal and gastrointestinal tubes"),
    ("E04.928", "Thoracic Surgical Procedures: sternotomy, thoracotomy, pneumonectomy, cardiac surgery"),
    ("E01.370.350.700.730", "Radiography, Thoracic: the examination itself (technical quality)"),
]

# Single descriptors that Open-i uses as head terms or subheadings outside the subtrees above.
EXTRA: list[str] = [
    "Blood Vessels",
    "Cholelithiasis",
    "Contrast Media",
    "Diaphragmatic Eventration",
    "Hypovolemia",
    "Mastectomy",
    "Pneumoperitoneum",
    "Sarcoidosis",
    "Spinal Fusion",
    "Sutures",
    "Tuberculosis",
]


def read_tree(path: Path) -> dict[str, str]:
    """Read `Name;TreeNumber` lines into {tree_number: name}."""
    tree: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            name, sep, number = line.rpartition(";")
            if not sep or not name or not number:
                raise SystemExit(f"{path}:{lineno}: expected 'Name;TreeNumber', got {line!r}")
            tree[number] = name
    orphans = sorted(n for n in tree if "." in n and n.rpartition(".")[0] not in tree)
    if orphans:
        raise SystemExit(f"{path}: tree numbers without a parent line, e.g. {orphans[:5]}")
    return tree


def mapped_descriptors(terms: dict) -> set[str]:
    """Every MeSH descriptor name that openi_terms.json refers to."""
    names: set[str] = set()
    for entry in [*terms["terms"].values(), *terms["organ_findings"].values()]:
        names.update(entry["descriptors"])
        for variant in entry.get("variants", {}).values():
            names.update(variant)
    for entry in terms["subheadings"].values():
        if entry.get("mesh"):
            names.add(entry["mesh"])
    return names


def _ancestor_numbers(number: str) -> Iterable[str]:
    parts = number.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def build(mesh_path: Path, terms_path: Path, roots: list[tuple[str, str]] = ROOTS,
          extra: list[str] = EXTRA) -> dict:
    """Build the vocabulary dict written to mesh_chest.json.

    Args:
        mesh_path: MeSH tree file, one `Name;TreeNumber` per line.
        terms_path: the Open-i mapping (openi_terms.json); its descriptors are kept too.
        roots: (tree-number prefix, why) pairs whose subtrees are kept.
        extra: single descriptor names to keep.

    Raises:
        SystemExit: a name in EXTRA or openi_terms.json is not a descriptor of the tree file.
    """
    tree = read_tree(mesh_path)
    numbers_of: dict[str, list[str]] = {}
    for number, name in tree.items():
        numbers_of.setdefault(name, []).append(number)

    terms = json.loads(Path(terms_path).read_text(encoding="utf-8"))
    wanted = set(extra) | mapped_descriptors(terms)
    missing = sorted(n for n in wanted if n not in numbers_of)
    if missing:
        raise SystemExit(f"not MeSH descriptors in {mesh_path.name} (fix EXTRA or "
                         f"{Path(terms_path).name}): {missing}")

    prefixes = {p for p, _ in roots}
    keep = {name for number, name in tree.items()
            if number in prefixes or not prefixes.isdisjoint(_ancestor_numbers(number))}
    keep |= wanted
    # Close under ancestors of every tree number (also of ancestors found on the way),
    # so that every parent resolves inside the file.
    todo = list(keep)
    while todo:
        for number in numbers_of[todo.pop()]:
            for ancestor in (tree[a] for a in _ancestor_numbers(number)):
                if ancestor not in keep:
                    keep.add(ancestor)
                    todo.append(ancestor)

    descriptors: dict[str, dict] = {}
    for name in sorted(keep):
        numbers = sorted(numbers_of[name])
        parents = sorted({tree[n.rpartition(".")[0]] for n in numbers if "." in n})
        descriptors[name] = {"tree_numbers": numbers, "parents": parents, "children": []}
    for name, entry in descriptors.items():
        for parent in entry["parents"]:
            descriptors[parent]["children"].append(name)
    for entry in descriptors.values():
        entry["children"].sort()

    return {
        "about": "MeSH descriptors relevant to chest radiographs, derived by "
                 "scripts/build_vocabulary.py. MeSH is produced by the U.S. National Library "
                 "of Medicine.",
        "source": mesh_path.name,
        "roots": {p: why for p, why in roots},
        "extra": sorted(extra),
        "descriptors": descriptors,
    }


def dumps(vocabulary: dict) -> str:
    """Deterministic JSON text: sorted keys, one descriptor per line."""
    lines = ["{"]
    head = {k: v for k, v in vocabulary.items() if k != "descriptors"}
    for key in sorted(head):
        lines.append(f" {json.dumps(key)}: {json.dumps(head[key], sort_keys=True)},")
    lines.append(' "descriptors": {')
    items = sorted(vocabulary["descriptors"].items())
    for i, (name, entry) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"  {json.dumps(name)}: {json.dumps(entry, sort_keys=True)}{comma}")
    lines.append(" }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH, help="MeSH tree file (mtreesYYYY.txt)")
    parser.add_argument("--terms", type=Path, default=DEFAULT_TERMS, help="Open-i term mapping JSON")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the vocabulary")
    args = parser.parse_args(argv)
    if not args.mesh.is_file():
        print(f"MeSH tree file not found: {args.mesh} (pass --mesh PATH)", file=sys.stderr)
        return 2
    vocabulary = build(args.mesh, args.terms)
    text = dumps(vocabulary)
    args.out.write_text(text, encoding="utf-8")
    n = len(vocabulary["descriptors"])
    print(f"wrote {args.out}: {n} descriptors from {len(ROOTS)} subtrees, "
          f"{len(EXTRA)} extra names and the Open-i mapping ({len(text.encode()) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
