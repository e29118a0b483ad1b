"""Read one Open-i MeSH term as a drawable finding: concept, side, zone, site, severity, spread.

Open-i terms are `Head/sub/sub...`. Usually the head is the finding (`Calcified Granuloma/lung/
upper lobe/right`), but many heads are organs whose finding is a subheading (`Lung/hypoinflation`,
`Aorta/tortuous`, `Diaphragm/right/elevated`, `Thoracic Vertebrae/degenerative`). This module keeps
its own small word lists so the renderer does not depend on the indexer's vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from indexer.records import MeshTerm

# Terms that mean "nothing to draw" (not counted as unknown).
NO_FINDING = {"normal", "no indexing"}

# Finding heads: head -> concept.
HEAD_CONCEPTS: dict[str, str] = {
    "technical quality of image unsatisfactory": "technical quality",
    "opacity": "opacity",
    "density": "density",
    "airspace disease": "airspace disease",
    "consolidation": "consolidation",
    "infiltrate": "infiltrate",
    "pneumonia": "pneumonia",
    "pulmonary alveoli": "airspace disease",
    "cardiomegaly": "cardiomegaly",
    "heart failure": "heart failure",
    "pericardial effusion": "pericardial effusion",
    "hypovolemia": "small heart",
    "pulmonary atelectasis": "atelectasis",
    "calcinosis": "calcinosis",
    "calcified granuloma": "calcified granuloma",
    "granuloma": "granuloma",
    "granulomatous disease": "granulomatous disease",
    "tuberculosis": "tuberculosis",
    "cicatrix": "cicatrix",
    "markings": "markings",
    "bronchitis": "bronchial thickening",
    "bronchiolitis": "bronchial thickening",
    "lung diseases, interstitial": "interstitial disease",
    "pulmonary fibrosis": "fibrosis",
    "fibrosis": "fibrosis",
    "sarcoidosis": "sarcoidosis",
    "cystic fibrosis": "cystic fibrosis",
    "bronchiectasis": "bronchiectasis",
    "pleural effusion": "pleural effusion",
    "hemothorax": "pleural effusion",
    "pneumothorax": "pneumothorax",
    "hydropneumothorax": "hydropneumothorax",
    "hemopneumothorax": "hydropneumothorax",
    "pneumoperitoneum": "pneumoperitoneum",
    "subcutaneous emphysema": "subcutaneous emphysema",
    "mediastinal emphysema": "pneumomediastinum",
    "nodule": "nodule",
    "mass": "mass",
    "cavitation": "cavity",
    "cysts": "cysts",
    "blister": "bullae",
    "bullous emphysema": "bullae",
    "emphysema": "emphysema",
    "pulmonary emphysema": "emphysema",
    "pulmonary disease, chronic obstructive": "copd",
    "lung, hyperlucent": "hyperlucent lung",
    "lucency": "lucency",
    "pulmonary congestion": "pulmonary congestion",
    "pulmonary edema": "pulmonary edema",
    "hypertension, pulmonary": "pulmonary artery enlargement",
    "atherosclerosis": "atherosclerosis",
    "aortic aneurysm": "aortic aneurysm",
    "hernia, hiatal": "hiatal hernia",
    "hernia, diaphragmatic": "diaphragmatic hernia",
    "colonic interposition": "colonic interposition",
    "diaphragmatic eventration": "eventration",
    "cholelithiasis": "gallstones",
    "scoliosis": "scoliosis",
    "kyphosis": "kyphosis",
    "osteophyte": "osteophyte",
    "spondylosis": "spondylosis",
    "arthritis": "arthritis",
    "hyperostosis, diffuse idiopathic skeletal": "dish",
    "bone diseases, metabolic": "osteopenia",
    "osteoporosis": "osteopenia",
    "sclerosis": "sclerosis",
    "expansile bone lesions": "bone lesion",
    "fractures, bone": "fracture",
    "dislocations": "dislocation",
    "catheters, indwelling": "catheter",
    "tube, inserted": "tube",
    "surgical instruments": "surgical instruments",
    "sutures": "sutures",
    "implanted medical device": "implanted device",
    "medical device": "medical device",
    "stents": "stent",
    "foreign bodies": "foreign body",
    "spinal fusion": "spinal fusion",
    "contrast media": "contrast",
    "breast implants": "breast implants",
    "mastectomy": "mastectomy",
    "pneumonectomy": "pneumonectomy",
    "funnel chest": "pectus excavatum",
    "pectus carinatum": "pectus carinatum",
    "epicardial fat": "epicardial fat",
    "nipple shadow": "nipple shadow",
    "volume loss": "volume loss",
    "shift": "mediastinal shift",
    "lymph nodes": "lymphadenopathy",
}

# Organ heads: the finding is a subheading. head -> structure group.
ORGAN_HEADS: dict[str, str] = {
    "lung": "lung", "aorta": "aorta", "aorta, thoracic": "aorta", "blood vessels": "vessels",
    "diaphragm": "diaphragm", "costophrenic angle": "cp", "sulcus": "cp", "pleura": "pleura",
    "thoracic vertebrae": "spine", "spine": "spine", "lumbar vertebrae": "spine",
    "cervical vertebrae": "spine", "bone and bones": "spine", "ribs": "ribs",
    "shoulder": "shoulder", "humerus": "shoulder",
    "cardiac shadow": "heart", "heart": "heart", "heart atria": "heart", "heart ventricles": "heart",
    "mediastinum": "mediastinum", "pulmonary artery": "pulmonary artery",
    "trachea, carina": "mediastinum", "thorax": "thorax",
    "deformity": "deformity", "thickening": "thickening", "adipose tissue": "fat",
}

# (structure group, finding word) -> concept; word None = any / no finding word.
ORGAN_FINDINGS: dict[tuple[str, str | None], str] = {
    ("lung", "hypoinflation"): "hypoinflation",
    ("lung", "hyperdistention"): "hyperdistention",
    ("lung", "hilum"): "hilar enlargement",
    ("lung", "azygos lobe"): "azygos lobe",
    ("lung", "interstitial"): "markings",
    ("lung", "blood vessels"): "markings",
    ("lung", "prominent"): "markings",
    ("lung", "obscured"): "opacity",
    ("vessels", None): "markings",
    ("aorta", "tortuous"): "tortuous aorta",
    ("aorta", "enlarged"): "tortuous aorta",
    ("aorta", "prominent"): "tortuous aorta",
    ("aorta", "obscured"): "opacity",
    ("diaphragm", "elevated"): "elevated diaphragm",
    ("diaphragm", "flattened"): "flattened diaphragm",
    ("diaphragm", "obscured"): "opacity",
    ("cp", "blunted"): "blunted costophrenic angle",
    ("cp", "obscured"): "blunted costophrenic angle",
    ("pleura", None): "pleural thickening",
    ("spine", "degenerative"): "degenerative spine",
    ("ribs", None): "bone deformity",
    ("shoulder", None): "shoulder arthritis",
    ("heart", "enlarged"): "cardiomegaly",
    ("heart", "prominent"): "cardiomegaly",
    ("heart", "borderline"): "cardiomegaly",
    ("heart", "irregular"): "cardiomegaly",
    ("heart", "small"): "small heart",
    ("heart", "obscured"): "opacity",
    ("mediastinum", "lymph nodes"): "lymphadenopathy",
    ("mediastinum", "paratracheal"): "lymphadenopathy",
    ("mediastinum", None): "mediastinal widening",
    ("pulmonary artery", None): "pulmonary artery enlargement",
    ("thorax", "small"): "volume loss",
    ("fat", None): "epicardial fat",
    ("thickening", "pleura"): "pleural thickening",
    ("thickening", None): "bronchial thickening",
}

# Deformity heads are read by the structure they name.
DEFORMITY_SITES: dict[str, str] = {
    "ribs": "bone deformity", "clavicle": "bone deformity", "humerus": "bone deformity",
    "shoulder": "bone deformity", "thoracic vertebrae": "vertebral deformity",
    "lumbar vertebrae": "vertebral deformity", "spine": "vertebral deformity",
    "sternum": "pectus excavatum", "thorax": "pectus excavatum", "lung": "cicatrix",
    "pleura": "pleural thickening", "mediastinum": "mediastinal widening", "heart": "cardiomegaly",
}

SIDE_WORDS = {"right": ("right",), "left": ("left",), "bilateral": ("right", "left")}
ZONE_WORDS = {
    "apex": "apex", "upper lobe": "upper", "middle lobe": "middle", "lingula": "lingula",
    "lower lobe": "lower", "base": "base", "hilum": "hilum", "retrocardiac": "retrocardiac",
    "paratracheal": "paratracheal", "costophrenic angle": "base", "cardiophrenic angle": "base",
    "supracardiac": "paratracheal", "azygos lobe": "apex", "sulcus": "base",
}
SITE_WORDS = {
    "lung", "aorta", "aorta, thoracic", "mediastinum", "ribs", "clavicle", "humerus", "shoulder",
    "sternum", "spine", "thoracic vertebrae", "lumbar vertebrae", "cervical vertebrae", "abdomen",
    "heart", "breast", "pleura", "lymph nodes", "trachea", "trachea, carina", "diaphragm",
    "coronary vessels", "aortic valve", "mitral valve", "blood vessels", "neck", "thorax",
    "esophagus", "bronchi", "heart ventricles", "heart atria", "pulmonary artery", "bronchovascular",
    "costophrenic angle", "breast implants", "adipose tissue",
}
SEVERITY_WORDS = {"borderline": 0.3, "small": 0.45, "mild": 0.5, "moderate": 0.75, "large": 0.95,
                  "severe": 1.0}
DEFAULT_SEVERITY = 0.65
SPREAD_WORDS = {"multiple", "scattered", "diffuse", "multilobar"}
PATTERN_WORDS = {"patchy", "streaky", "interstitial", "round", "reticular", "focal", "irregular"}
DIRECTION_WORDS = {"anterior", "posterior"}
QUALIFIER_WORDS = {"healed", "chronic", "acute", "degenerative", "obscured", "blunted", "elevated",
                   "flattened", "tortuous", "enlarged", "prominent", "hypoinflation", "hyperdistention",
                   "abnormal"}


@dataclass(frozen=True)
class Finding:
    """What one MeSH term asks the renderer to draw.

    `sides` uses the PATIENT's sides ('right', 'left'); empty when the term names none.
    `severity` is 0..1 (`DEFAULT_SEVERITY` when no severity word is given).
    """

    concept: str
    term: str
    sides: tuple[str, ...] = ()
    zone: str | None = None
    sites: tuple[str, ...] = ()
    severity: float = DEFAULT_SEVERITY
    severity_word: str | None = None
    spread: str | None = None
    pattern: str | None = None
    direction: str | None = None
    qualifiers: tuple[str, ...] = field(default=())

    @property
    def site(self) -> str | None:
        """The first named structure other than 'lung', else 'lung', else None."""
        others = [s for s in self.sites if s != "lung"]
        return others[0] if others else (self.sites[0] if self.sites else None)

    @property
    def bilateral(self) -> bool:
        return len(self.sides) == 2


def _concept(term: MeshTerm, words: list[str]) -> str | None:
    head = term.head_key
    if head == "arthritis" and {"shoulder", "humerus"} & set(words):
        return "shoulder arthritis"
    if head in HEAD_CONCEPTS:
        return HEAD_CONCEPTS[head]
    if head == "deformity":
        for w in words:
            if w in DEFORMITY_SITES:
                return DEFORMITY_SITES[w]
        return "bone deformity"
    group = ORGAN_HEADS.get(head)
    if group is None:
        return None
    for w in words:
        concept = ORGAN_FINDINGS.get((group, w))
        if concept:
            return concept
    return ORGAN_FINDINGS.get((group, None))


def parse_finding(term: MeshTerm | str) -> Finding | None:
    """The drawable finding of a MeSH term, or None for 'normal'/'no indexing' or an unknown term.

    Use `is_no_finding` to tell a deliberate no-finding term from an unknown one.
    """
    if isinstance(term, str):
        term = MeshTerm.parse(term)
    words = [s.lower() for s in term.subheadings]
    if term.head_key in NO_FINDING:
        return None
    concept = _concept(term, words)
    if concept is None:
        return None
    sides: tuple[str, ...] = ()
    zone = spread = pattern = direction = severity_word = None
    sites: list[str] = []
    qualifiers: list[str] = []
    if term.head_key in SITE_WORDS:
        sites.append(term.head_key)
    for w in words:
        if w in SIDE_WORDS:
            sides = tuple(dict.fromkeys(sides + SIDE_WORDS[w]))
        if w in ZONE_WORDS and zone is None:
            zone = ZONE_WORDS[w]
        if w in SITE_WORDS:
            sites.append(w)
        if w in SEVERITY_WORDS:
            severity_word = w
        if w in SPREAD_WORDS:
            spread = w
        if w in PATTERN_WORDS and pattern is None:
            pattern = w
        if w in DIRECTION_WORDS:
            direction = w
        if w in QUALIFIER_WORDS:
            qualifiers.append(w)
    # The middle lobe is right-sided and the lingula left-sided by anatomy.
    if zone == "middle" and not sides:
        sides = ("right",)
    if zone == "lingula" and not sides:
        sides = ("left",)
    severity = SEVERITY_WORDS.get(severity_word, DEFAULT_SEVERITY)
    return Finding(concept=concept, term=term.raw, sides=sides, zone=zone, sites=tuple(dict.fromkeys(sites)),
                   severity=severity, severity_word=severity_word, spread=spread, pattern=pattern,
                   direction=direction, qualifiers=tuple(qualifiers))


def is_no_finding(term: MeshTerm | str) -> bool:
    """True for terms that deliberately draw nothing ('normal', 'No Indexing')."""
    if isinstance(term, str):
        term = MeshTerm.parse(term)
    return term.head_key in NO_FINDING
