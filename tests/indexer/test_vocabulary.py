"""Tests of the chest MeSH vocabulary, the Open-i term mapping and the script that builds them."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from indexer.errors import UnknownTermError, VocabularyError
from indexer.records import MeshTerm, Report
from indexer.vocabulary import MESH_FILE, TERMS_FILE, Vocabulary
from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
MTREES = SHARED_DATA / "mesh" / "mtrees2019.txt"

TINY_TREE = """\
Respiratory Tract Diseases;C08
Lung Diseases;C08.381
Pulmonary Atelectasis;C08.381.730
Pathological Conditions, Signs and Symptoms;C23
Pathologic Processes;C23.550
Granuloma;C23.550.382
Granuloma, Respiratory Tract;C08.280
Granuloma, Respiratory Tract;C23.550.382.968
Respiratory System;A04
Lung;A04.411
Cardiovascular System;A07
Heart;A07.541
"""


@pytest.fixture(scope="module")
def build_script():
    """scripts/build_vocabulary.py imported as a module."""
    spec = importlib.util.spec_from_file_location("build_vocabulary", REPO / "scripts" / "build_vocabulary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_files(tmp_path):
    """A twelve-line MeSH tree and a two-term Open-i mapping."""
    tree = tmp_path / "mtrees.txt"
    tree.write_text(TINY_TREE)
    terms = {
        "terms": {"calcified granuloma": {"term": "Calcified Granuloma", "category": "finding",
                                          "descriptors": ["Granuloma, Respiratory Tract"], "why": "test"}},
        "organ_findings": {},
        "subheadings": {"lung": {"kind": "organ", "canonical": "lung", "mesh": "Lung"}},
    }
    terms_path = tmp_path / "terms.json"
    terms_path.write_text(json.dumps(terms))
    return tree, terms_path, terms


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.load()


def concept(vocab: Vocabulary, raw: str):
    return vocab.concept(MeshTerm.parse(raw))


# --- the build script

def test_build_keeps_roots_mapped_names_and_all_their_ancestors(build_script, tiny_files):
    tree, terms_path, _ = tiny_files
    built = build_script.build(tree, terms_path, roots=[("C08.381", "lung diseases")], extra=[])
    names = set(built["descriptors"])
    # subtree of the root, the mapped descriptor, and every ancestor of every tree number
    assert {"Lung Diseases", "Pulmonary Atelectasis", "Granuloma, Respiratory Tract", "Lung"} <= names
    assert {"Respiratory Tract Diseases", "Granuloma", "Pathologic Processes", "Respiratory System"} <= names
    assert "Heart" not in names
    gr = built["descriptors"]["Granuloma, Respiratory Tract"]
    assert gr["parents"] == ["Granuloma", "Respiratory Tract Diseases"]
    assert built["descriptors"]["Granuloma"]["children"] == ["Granuloma, Respiratory Tract"]


def test_build_rejects_a_mapping_to_a_name_that_is_not_a_descriptor(build_script, tiny_files):
    tree, terms_path, terms = tiny_files
    terms["terms"]["calcified granuloma"]["descriptors"] = ["Calcified Granulomas"]
    terms_path.write_text(json.dumps(terms))
    with pytest.raises(SystemExit, match="Calcified Granulomas"):
        build_script.build(tree, terms_path, roots=[], extra=[])


def test_build_rejects_a_broken_tree_file(build_script, tmp_path):
    tree = tmp_path / "mtrees.txt"
    tree.write_text("Lung Diseases;C08.381\n")
    with pytest.raises(SystemExit, match="C08.381"):
        build_script.read_tree(tree)


def test_build_output_is_deterministic_and_round_trips(build_script, tiny_files):
    tree, terms_path, _ = tiny_files
    first = build_script.dumps(build_script.build(tree, terms_path, roots=[("C08", "x")], extra=["Heart"]))
    second = build_script.dumps(build_script.build(tree, terms_path, roots=[("C08", "x")], extra=["Heart"]))
    assert first == second
    assert json.loads(first)["descriptors"]["Heart"]["tree_numbers"] == ["A07.541"]


def test_committed_vocabulary_equals_a_fresh_build(build_script):
    if not MTREES.is_file():
        pytest.skip(f"MeSH tree file {MTREES} is absent, cannot rebuild the vocabulary to compare")
    fresh = build_script.dumps(build_script.build(MTREES, TERMS_FILE))
    assert MESH_FILE.read_text(encoding="utf-8") == fresh, "run `make vocabulary` and commit the result"


def test_committed_vocabulary_is_small_and_closed():
    assert MESH_FILE.stat().st_size < 1_000_000
    descriptors = json.loads(MESH_FILE.read_text())["descriptors"]
    for name, entry in descriptors.items():
        for parent in entry["parents"]:
            assert name in descriptors[parent]["children"], (name, parent)
        for child in entry["children"]:
            assert name in descriptors[child]["parents"], (name, child)


# --- hierarchy

def test_load_is_cached(vocab):
    assert Vocabulary.load() is vocab


def test_atelectasis_is_a_lung_disease(vocab):
    ancestors = vocab.ancestors("pulmonary atelectasis")
    assert ancestors[0] == "Lung Diseases"  # nearest first
    assert "Respiratory Tract Diseases" in ancestors
    assert "Pulmonary Atelectasis" in vocab.descendants("Lung Diseases")
    assert "Cardiomegaly" not in vocab.descendants("Lung Diseases")


def test_descriptor_lookup_is_case_insensitive_and_suggests_on_a_typo(vocab):
    assert vocab.descriptor("CARDIOMEGALY").tree_numbers == ("C14.280.195", "C23.300.775.250")
    assert vocab.descriptor("Lung").category == "anatomy"
    with pytest.raises(UnknownTermError, match="Pulmonary Atelectasis"):
        vocab.descriptor("Pulmonary Atelectasi")


# --- Open-i mapping

def test_opacity_maps_onto_lung_diseases(vocab):
    c = vocab.find("Opacity")
    assert c.category == "finding" and c.finding == "opacity"
    assert c.descriptors == ("Lung Diseases",)
    assert "Respiratory Tract Diseases" in c.ancestors


def test_calcified_granuloma_is_granuloma_and_calcinosis(vocab):
    c = concept(vocab, "Calcified Granuloma/lung/upper lobe/right")
    assert c.finding == "calcified granuloma"
    assert set(c.descriptors) == {"Granuloma, Respiratory Tract", "Calcinosis"}
    assert "Granuloma" in c.ancestors and "Respiratory Tract Diseases" in c.ancestors
    assert (c.organ, c.locations, c.laterality) == ("lung", ("upper lobe",), "right")
    assert c.anatomy == ("Lung",)


def test_granulomatous_disease_is_not_the_immunodeficiency(vocab):
    c = vocab.find("granulomatous disease")
    assert "Granulomatous Disease, Chronic" not in c.descriptors + c.ancestors


def test_organ_head_takes_its_finding_from_the_subheadings(vocab):
    c = concept(vocab, "Lung/hypoinflation/mild")
    assert (c.finding, c.organ, c.category, c.severities) == ("hypoinflation", "lung", "finding", ("mild",))
    assert c.descriptors == ("Lung",)
    d = concept(vocab, "Diaphragm/right/elevated")
    assert (d.finding, d.organ, d.laterality) == ("elevated", "diaphragm", "right")
    t = concept(vocab, "Thoracic Vertebrae/degenerative/multiple")
    assert t.descriptors == ("Spondylosis",) and "Spinal Diseases" in t.ancestors
    s = concept(vocab, "Cardiac Shadow/enlarged/mild")
    assert s.descriptors == ("Cardiomegaly",) and s.organ == "cardiac shadow"


def test_most_specific_organ_decides_the_organ_finding(vocab):
    c = concept(vocab, "Lung/hilum/lymph nodes/bilateral/enlarged")
    assert c.descriptors == ("Lymphadenopathy",)
    assert (c.organ, c.locations, c.laterality) == ("lung", ("hilum", "lymph nodes"), "bilateral")


def test_variants_follow_the_subheadings(vocab):
    assert concept(vocab, "Nodule/lung").descriptors == ("Solitary Pulmonary Nodule",)
    assert concept(vocab, "Nodule/lung/multiple").descriptors == ("Multiple Pulmonary Nodules",)
    assert concept(vocab, "Mass/lung/upper lobe").descriptors == ("Lung Neoplasms",)


def test_normal_no_indexing_and_unknown_heads(vocab):
    assert concept(vocab, "normal").category == "normal"
    assert concept(vocab, "No Indexing").category == "none"
    assert concept(vocab, "Technical Quality of Image Unsatisfactory").category == "technical"
    assert concept(vocab, "Catheters, Indwelling/right").category == "device"
    assert vocab.find("Flux Capacitor") is None
    assert concept(vocab, "Flux Capacitor").category == "unknown"


# --- subheadings

@pytest.mark.parametrize("raw, organ, locations, laterality, severities, qualifiers", [
    ("Opacity/lung/base/left/patchy/mild", "lung", ("base",), "left", ("mild",), ("patchy",)),
    ("Pulmonary Atelectasis/lingula", None, ("lingula",), None, (), ()),
    ("Pleural Effusion/bilateral/small", None, (), "bilateral", ("small",), ()),
    ("Calcinosis/aorta, thoracic", "thoracic aorta", (), None, (), ()),
    ("Density/retrocardiac/right/left", None, ("retrocardiac",), "bilateral", (), ()),
    ("Granuloma/lung/hilum/multiple/scattered/chronic", "lung", ("hilum",), None,
     ("multiple", "scattered", "chronic"), ()),
])
def test_subheadings_are_parsed(vocab, raw, organ, locations, laterality, severities, qualifiers):
    c = concept(vocab, raw)
    assert (c.organ, c.locations, c.laterality, c.severities, c.qualifiers) == \
        (organ, locations, laterality, severities, qualifiers)
    assert c.unknown == ()


def test_unrecognised_subheadings_are_kept(vocab):
    c = concept(vocab, "Opacity/lung/Wibble/right")
    assert c.unknown == ("Wibble",)
    assert c.laterality == "right"
    assert vocab.subheading("Upper Lobe").mesh == "Lung"
    assert vocab.subheading("wibble") is None


def test_mapping_errors_are_reported(tiny_files):
    _, _, terms = tiny_files
    terms["subheadings"]["lung"]["kind"] = "organs"
    descriptors = {"Lung": {"tree_numbers": ["A04.411"], "parents": [], "children": []}}
    with pytest.raises(VocabularyError, match="Granuloma, Respiratory Tract.*organs"):
        Vocabulary(descriptors, terms)


def test_every_mapped_term_is_documented():
    terms = json.loads(TERMS_FILE.read_text())
    for key, entry in terms["terms"].items():
        assert entry["term"].lower() == key and entry["why"], key
        assert entry["descriptors"] or entry["category"] in ("normal", "none"), key
    for key, entry in terms["organ_findings"].items():
        assert entry["descriptors"] and entry["why"], key


# --- coverage

def test_coverage_counts_heads_and_subheadings(vocab):
    reports = [
        Report("1", mesh_major=(MeshTerm.parse("Opacity/lung/Wibble"), MeshTerm.parse("normal"))),
        Report("2", mesh_major=(MeshTerm.parse("Flux Capacitor/right"),)),
    ]
    cov = vocab.coverage(reports)
    assert (cov["heads"], cov["heads_recognised"]) == (3, 2)
    assert (cov["subheadings"], cov["subheadings_recognised"]) == (3, 2)
    assert (cov["total"], cov["total_recognised"], cov["terms_recognised"]) == (6, 4, 1)
    assert {(u["kind"], u["name"]) for u in cov["unrecognised"]} == {("head", "flux capacitor"),
                                                                     ("subheading", "wibble")}


@pytest.mark.slow
def test_vocabulary_covers_the_real_corpus(vocab, real_reports_tgz):
    from pipelines.sources.openi import load_reports

    reports, summary = load_reports(real_reports_tgz)
    cov = vocab.coverage(reports)
    assert summary.loaded == 3955
    assert cov["heads"] == 8298 and cov["subheadings"] == 12367
    for part in ("heads", "subheadings", "total", "terms"):
        assert cov[f"{part}_percent"] >= 95.0, (part, cov["unrecognised"])
