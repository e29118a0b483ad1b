"""Table 1 terms, label mining and annotation words on hand-made reports."""
from __future__ import annotations

from indexer.records import MeshTerm, Report
from pipelines.labels import annotation_words, mine_labels, single_label, term_of, term_table, terms_of


def rep(rid, majors, n_images=2):
    return Report(report_id=str(rid), mesh_major=tuple(MeshTerm.parse(m) for m in majors),
                  image_ids=tuple(f"CXR{rid}_IM-{i}" for i in range(n_images)))


def test_term_of_keeps_organ_with_its_finding():
    assert term_of(MeshTerm.parse("Lung/hypoinflation/mild")) == "lung/hypoinflation"
    assert term_of(MeshTerm.parse("Thoracic Vertebrae/degenerative/mild")) == "thoracic vertebrae/degenerative"
    assert term_of(MeshTerm.parse("Calcinosis/aorta")) == "calcinosis"
    assert term_of(MeshTerm.parse("Catheters, Indwelling/right")) == "catheters, indwelling"
    assert term_of(MeshTerm.parse("Lung")) == "lung"


def test_terms_of_deduplicates_in_mention_order():
    r = rep(1, ["Opacity/lung/base/left", "Cardiomegaly", "Opacity/lung/apex/right"])
    assert terms_of(r) == ("opacity", "cardiomegaly")
    assert single_label(r) is None
    granulomas = rep(2, ["Calcified Granuloma/lung/base", "Calcified Granuloma/lung/apex"])
    assert single_label(granulomas) == "calcified granuloma"


def test_term_table_counts_images_and_overlap():
    reports = [rep(1, ["normal"], 2), rep(2, ["Opacity", "Cardiomegaly"], 3), rep(3, ["Opacity"], 1),
               rep(4, ["Mass"], 0)]
    table = {t.term: (t.total, t.overlap) for t in term_table(reports)}
    assert table == {"opacity": (4, 3), "cardiomegaly": (3, 3), "normal": (2, 0)}
    assert [t.term for t in term_table(reports)][0] == "opacity"


def test_mine_labels_threshold_counts_images_and_excludes_non_findings():
    reports = [rep(i, ["normal"], 2) for i in range(3)] + [rep(10, ["Nodule/lung"], 3), rep(11, ["Nodule"], 1)]
    reports += [rep(20 + i, ["No Indexing"], 2) for i in range(5)] + [rep(30, ["Nodule", "Mass"], 5)]
    assert mine_labels(reports, min_cases=4) == {"normal": 6, "nodule": 4}
    assert mine_labels(reports, min_cases=5) == {"normal": 6}


def test_annotation_words_are_components_of_first_term():
    r = rep(1, ["Calcified Granuloma/lung/upper lobe/right", "Cardiomegaly/mild"])
    assert annotation_words(r) == ("calcified granuloma", "lung", "upper lobe", "right")
    assert annotation_words(rep(2, ["normal"])) == ("normal",)
