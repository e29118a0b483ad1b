"""Fixtures for indexer tests: a small document set and a text backend of each kind.

`text_backend` is parametrised over the embedded backend (in tmp_path) and the real Elasticsearch
server at $CXRSEARCH_ES_URL (marked `es`; a unique alias prefix per test, every index it made
deleted afterwards).
"""
from __future__ import annotations

import pytest

from indexer.documents import DocumentInput, GeneratedAnnotation, build_document
from indexer.records import MeshTerm, Report
from indexer.text.embedded import EmbeddedTextBackend
from indexer.vocabulary import Vocabulary
from pipelines.manifest import ManifestEntry

# image id -> (MeSH major terms, view, split, findings text)
CORPUS = {
    "IMG-A": (["Calcified Granuloma/lung/upper lobe/right"], "frontal", "train",
              "Calcified granuloma in the right upper lobe."),
    "IMG-B": (["Pulmonary Atelectasis/base/left"], "frontal", "val", "Subsegmental atelectasis at the left base."),
    "IMG-C": (["Cardiomegaly/mild"], "lateral", "train", "The heart is mildly enlarged."),
    "IMG-D": (["normal"], "frontal", "train", "The lungs are clear. No effusion."),
    "IMG-E": (["normal"], "frontal", "test", "Clear lungs."),
    "IMG-F": (["Nodule/lung/upper lobe/left"], "frontal", "train", "A small nodule in the left upper lobe."),
    "IMG-G": (["Spine/degenerative/mild"], "lateral", "val", "Mild degenerative change of the thoracic spine."),
    "IMG-H": (["Pleural Effusion/right/small"], "frontal", "train", "Small right pleural effusion."),
    "IMG-I": (["normal"], "lateral", "test", "No acute disease."),
    "IMG-J": (["Emphysema"], "frontal", "train", "Hyperinflated lungs, emphysema."),
}
# IMG-E's report says normal; the cascade wrote an opacity for it.
GENERATED = {"IMG-E": GeneratedAnnotation(("opacity", "lung", "base", "right"), "model-v1", "opacity",
                                          {"opacity": 0.7, "normal": 0.3})}


def make_inputs(synthetic_ids: tuple[str, ...] = ("IMG-A", "IMG-B", "IMG-C")) -> list[DocumentInput]:
    """DocumentInputs of CORPUS: one report per image (report id = the image's number)."""
    inputs = []
    for n, (image_id, (mesh, view, split, findings)) in enumerate(CORPUS.items(), 1):
        terms = tuple(MeshTerm.parse(m) for m in mesh)
        words = tuple(p.lower() for p in (terms[0].head, *terms[0].subheadings))
        entry = ManifestEntry(image_id=image_id, report_id=str(n), split=split, label=terms[0].head_key,
                              first_term=terms[0].head_key, words=words, view=view, mesh=tuple(mesh))
        report = Report(report_id=str(n), indication="Chest pain.", findings=findings, impression="See findings.",
                        mesh_major=terms, image_ids=(image_id,))
        generated = (GENERATED[image_id],) if image_id in GENERATED else ()
        inputs.append(DocumentInput(image_id, entry, report, generated, image_id in synthetic_ids, f"hash-{n}"))
    return inputs


@pytest.fixture(scope="session")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture
def documents(vocabulary) -> list[dict]:
    """The ten CORPUS documents, built with the real vocabulary."""
    return [build_document(item, vocabulary) for item in make_inputs()]


@pytest.fixture
def es_backend(es_url, es_alias):
    """An ElasticsearchTextBackend on the real server with a unique alias; its indices deleted after (es_alias)."""
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

    backend = ElasticsearchTextBackend(ESSettings(url=es_url, index=es_alias))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=["embedded", pytest.param("es", marks=pytest.mark.es)])
def text_backend(request, tmp_path):
    """Each text backend, empty: embedded in tmp_path, Elasticsearch with a unique alias prefix."""
    if request.param == "embedded":
        backend = EmbeddedTextBackend(tmp_path / "text")
        yield backend
        backend.close()
    else:
        yield request.getfixturevalue("es_backend")
