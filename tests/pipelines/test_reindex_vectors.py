"""The reindex job's vectors: FAISS stores beside each text version, carried over, resumable, switched with the text."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import IndexNotFound, VectorStoreNotFound
from indexer.text.embedded import EmbeddedTextBackend
from indexer.vectors import VECTOR_KINDS, LiveVectors, live_vectors
from indexer.vectors.base import findings_query
from pipelines.annotator import load_annotator
from pipelines.reindex import ReindexError, run_reindex
from tests.pipelines.test_reindex import ROOT, SmallCorpus, all_docs, write_png


def make_checkpoint(path: Path) -> Path:
    """An untrained, seeded tiny cascade (64-d embeddings): the plumbing is under test, not the model."""
    import torch

    from models.cascade import Cascade
    from models.config import apply_overrides, load_config
    from models.vocab import WordVocabulary

    torch.manual_seed(0)
    cfg = apply_overrides(load_config("tiny"), ["cnn.width=0.0625"])
    vocab = WordVocabulary.build([("normal",), ("cardiomegaly", "mild"), ("opacity", "lung", "base")])
    names = ["cardiomegaly", "normal", "opacity"]
    return Cascade.build(cfg, vocab, names, {n: n for n in names}).save(path)


class Counting:
    """The real cascade annotator, recording which images it was asked to annotate."""

    produces_vectors = True

    def __init__(self, inner, spoil: dict[str, str] | None = None):
        self.inner, self.model_version = inner, inner.model_version
        self.seen: list[str] = []
        self.spoil = spoil or {}  # image id -> 'nan' (context vector) or 'none' (no embedding)

    def __call__(self, images):
        self.seen += [i for i, _ in images]
        out = []
        for a in self.inner(images):
            how = self.spoil.get(a.image_id)
            if how == "nan":
                a = replace(a, context_vector=np.full_like(a.context_vector, np.nan))
            elif how == "none":
                a = replace(a, embedding=None)
            out.append(a)
        return out


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One thread: the 2 cores are shared, and torch's spinning threads make a tiny model 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model") / "cascade.pt")


@pytest.fixture(scope="module")
def cascade(checkpoint):
    return load_annotator(checkpoint)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cascade) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {image_id: unit vector}} of one uninterrupted run over the small corpus."""
    root = tmp_path_factory.mktemp("reference")
    corpus = SmallCorpus(root / "corpus")
    run_reindex(corpus.config(root / "index"), annotator=Counting(cascade))
    return {kind: vectors_by_id(root / "index", kind) for kind in VECTOR_KINDS}


@pytest.fixture
def corpus(tmp_path) -> SmallCorpus:
    return SmallCorpus(tmp_path / "corpus")


def vectors_by_id(index_dir: Path, kind: str) -> dict[str, np.ndarray]:
    store = live_vectors(index_dir, kind)
    ids = store.image_ids()
    return dict(zip(ids, store.get_vectors(ids)))


def text_ids(index_dir: Path) -> list[str]:
    return sorted(all_docs(index_dir))


def vector_versions(index_dir: Path) -> list[str]:
    home = index_dir / "vectors" / "embedded"
    return sorted(p.name for p in home.iterdir()) if home.is_dir() else []


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x)


# --- one run ---------------------------------------------------------------------------------------


def test_checkpoint_reindex_writes_both_stores_with_exactly_the_text_ids(corpus, tmp_path, checkpoint, cascade):
    summary = run_reindex(corpus.config(tmp_path / "index", checkpoint=checkpoint))
    assert summary.vectors == {"cnn_embedding": 24, "context_vector": 24, "findings": 24} and summary.documents == 24
    assert summary.vectors_dir == str(tmp_path / "index" / "vectors" / "embedded" / summary.version)
    assert "24 CNN embeddings, 24 context vectors, 24 findings vectors" in summary.format()
    assert text_ids(tmp_path / "index") == corpus.ids
    for kind in VECTOR_KINDS:
        store = live_vectors(tmp_path / "index", kind)
        assert sorted(store.image_ids()) == corpus.ids and len(store) == 24
        assert store.model_version == summary.model_version and store.index_type == "flat"
    # the stored vectors are the cascade's own, normalised
    image = corpus.images / "CXR5_IM-0005-2001.png"
    [direct] = cascade([("CXR5_IM-0005-2001", image)])
    np.testing.assert_allclose(live_vectors(tmp_path / "index", "embedding").get_vectors(["CXR5_IM-0005-2001"])[0],
                               unit(direct.embedding), atol=1e-5)
    np.testing.assert_allclose(live_vectors(tmp_path / "index", "context").get_vectors(["CXR5_IM-0005-2001"])[0],
                               unit(direct.context_vector), atol=1e-5)
    assert vector_versions(tmp_path / "index") == [summary.version]
    assert not (tmp_path / "index" / "builds" / summary.version).exists()


def test_unchanged_images_carry_their_vectors_over_without_annotating(corpus, tmp_path, cascade):
    index = tmp_path / "index"
    first = run_reindex(corpus.config(index), annotator=Counting(cascade))
    before = {kind: vectors_by_id(index, kind) for kind in VECTOR_KINDS}
    live = LiveVectors(index, EmbeddedTextBackend(index / "text"))
    assert live.get("context")[0] == first.version

    again = Counting(cascade)
    assert run_reindex(corpus.config(index), annotator=again).nothing_changed
    assert again.seen == []  # same content, same model: nothing annotated, live version kept

    write_png(corpus.images / "CXR3_IM-0003-1001.png", seed=4321)  # new pixels
    (corpus.images / "CXR4_IM-0004-2001.png").unlink()  # removed from the input
    model = Counting(cascade)
    second = run_reindex(corpus.config(index), annotator=model)
    assert model.seen == ["CXR3_IM-0003-1001"]  # only the changed image reaches the model
    assert (second.indexed, second.unchanged) == (1, 22) and second.switched
    for kind in VECTOR_KINDS:
        after = vectors_by_id(index, kind)
        assert sorted(after) == text_ids(index) and len(after) == 23
        assert "CXR4_IM-0004-2001" not in after  # removed image: no vector left
        # copied, not recomputed (the model never saw them); only re-normalised, so equal to float32 rounding
        assert all(np.allclose(after[i], before[kind][i], rtol=0, atol=1e-6) for i in after if i != "CXR3_IM-0003-1001")
    assert not np.allclose(vectors_by_id(index, "cnn_embedding")["CXR3_IM-0003-1001"],
                           before["cnn_embedding"]["CXR3_IM-0003-1001"])
    assert vector_versions(index) == [second.version]  # the previous version's vectors went with its text
    version, store = live.get("context")  # the web app's accessor follows the switch
    assert version == second.version and len(store) == 23


def test_missing_live_vectors_are_rebuilt_by_annotating_again(corpus, tmp_path, cascade):
    index = tmp_path / "index"
    first = run_reindex(corpus.config(index), annotator=Counting(cascade))
    for kind in VECTOR_KINDS:  # e.g. deleted by hand: nothing to carry over
        for f in (index / "vectors" / "embedded" / first.version / kind).iterdir():
            f.unlink()
    model = Counting(cascade)
    summary = run_reindex(corpus.config(index), annotator=model)
    assert sorted(model.seen) == corpus.ids and summary.switched and summary.indexed == 24
    assert sorted(live_vectors(index, "context").image_ids()) == corpus.ids


def test_images_with_unusable_vectors_fail_and_are_in_neither_index(corpus, tmp_path, cascade):
    model = Counting(cascade, spoil={"CXR2_IM-0002-1001": "nan", "CXR6_IM-0006-2001": "none"})
    summary = run_reindex(corpus.config(tmp_path / "index"), annotator=model)
    assert summary.n_failed == 2 and summary.indexed == 22
    assert summary.failed["the model gave no cnn_embedding"] == 1
    assert summary.failed["unusable context_vector (empty, NaN, infinite or all zeros)"] == 1
    ids = text_ids(tmp_path / "index")
    assert len(ids) == 22 and "CXR2_IM-0002-1001" not in ids
    for kind in VECTOR_KINDS:
        assert sorted(live_vectors(tmp_path / "index", kind).image_ids()) == ids


# --- without a checkpoint --------------------------------------------------------------------------


def test_text_only_builds_have_no_vectors_and_search_still_works(corpus, tmp_path, cascade):
    index = tmp_path / "index"
    run_reindex(corpus.config(index))
    assert not (index / "vectors").exists()
    with pytest.raises(VectorStoreNotFound, match="without a cascade checkpoint.*--checkpoint"):
        live_vectors(index, "context")
    backend = EmbeddedTextBackend(index / "text")
    assert backend.search("granuloma").total == 4

    with_model = run_reindex(corpus.config(index), annotator=Counting(cascade))  # another model version: all new
    assert with_model.indexed == 24 and len(live_vectors(index, "embedding")) == 24
    text_again = run_reindex(corpus.config(index))  # and back: the vectors leave with their version
    assert text_again.switched and text_again.vectors == {} and vector_versions(index) == []
    assert "vectors: none" in text_again.format()
    with pytest.raises(VectorStoreNotFound):
        live_vectors(index, "embedding")
    assert backend.search("granuloma").total == 4


def test_no_index_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFound, match="cxrsearch reindex"):
        live_vectors(tmp_path / "empty", "context")


# --- kill and resume ---------------------------------------------------------------------------------


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import torch
from pipelines.reindex import ReindexConfig, run_reindex
torch.set_num_threads(1)
images, index_dir, manifest, reports, checkpoint, after = sys.argv[1:]
config = ReindexConfig(images=Path(images), index_dir=Path(index_dir), manifest=Path(manifest),
                       reports=Path(reports), checkpoint=Path(checkpoint), batch_size=4, progress_bar=False)
def progress(p):
    if p.phase == "indexing" and p.done >= int(after):
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
run_reindex(config, progress=progress)
"""


def test_killed_job_resumes_with_exact_vectors(corpus, tmp_path, checkpoint, cascade, reference):
    index, saved = tmp_path / "index", tmp_path / "killed-state"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(corpus.images), str(index), str(corpus.manifest),
                           str(corpus.reports), str(checkpoint), "12"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    backend = EmbeddedTextBackend(index / "text")
    assert backend.live_version() is None and vector_versions(index) == []  # nothing went live
    [build] = backend.versions()
    backend.close()
    journal = index / "builds" / build / "journal-1of1.jsonl"
    lines = journal.read_text().splitlines()
    segments = sorted((index / "builds" / build / "vectors-1of1").glob("seg-*.npz"))
    assert len(lines) == 1 + 3 and len(segments) == 3  # one segment per journaled batch
    shutil.copytree(index, saved)  # the same killed state, resumed twice below (the job key holds the path)

    for lose_last_journal_line in (False, True):
        if lose_last_journal_line:  # batch 3's text and vectors were written, its journal line was not
            shutil.rmtree(index)
            shutil.copytree(saved, index)
            journal.write_text("\n".join(lines[:-1]) + "\n")
        kept = [json.loads(line) for line in lines[1:3 if lose_last_journal_line else 4]]
        journaled = {i for record in kept for i in record["indexed"]}
        model = Counting(cascade)
        summary = run_reindex(corpus.config(index), annotator=model)
        assert summary.version == build and summary.resumed == 4 * len(kept)
        assert sorted(model.seen) == sorted(set(corpus.ids) - journaled)  # journaled batches: not annotated again
        assert summary.vectors == {"cnn_embedding": 24, "context_vector": 24, "findings": 24}
        assert text_ids(index) == sorted(reference["context_vector"])
        for kind in VECTOR_KINDS:
            got = vectors_by_id(index, kind)
            assert sorted(got) == text_ids(index)  # no duplicate, none lost, the same ids as the text
            for image_id, vector in reference[kind].items():
                np.testing.assert_allclose(got[image_id], vector, atol=1e-5)


def test_a_batch_whose_vectors_were_not_saved_is_redone(corpus, tmp_path, cascade, reference):
    from pipelines.reindex.vectors import FaissVectorWriter

    class DiesOnThirdBatch(FaissVectorWriter):
        def write(self, version, part, seq, fresh, carried, documents=None):
            if seq == 3:  # batch 3's text is written, its vectors and journal line are not
                raise OSError("disk full")
            return super().write(version, part, seq, fresh, carried, documents)

    index = tmp_path / "index"
    backend = EmbeddedTextBackend(index / "text")
    model = Counting(cascade)
    with pytest.raises(OSError, match="disk full"):
        run_reindex(corpus.config(index), annotator=model,
                    vectors=DiesOnThirdBatch(index, backend, model.model_version))
    [build] = backend.versions()
    assert backend.count(build) == 12 and backend.live_version() is None
    summary = run_reindex(corpus.config(index), annotator=Counting(cascade))
    assert summary.resumed == 8 and summary.vectors == {"cnn_embedding": 24, "context_vector": 24, "findings": 24}
    for kind in VECTOR_KINDS:
        got = vectors_by_id(index, kind)
        assert sorted(got) == text_ids(index) == sorted(reference[kind])


def test_vectors_that_disagree_with_the_text_block_the_switch(corpus, tmp_path, cascade):
    index = tmp_path / "index"
    backend = EmbeddedTextBackend(index / "text")

    def sneak(progress):  # a document no batch journaled, e.g. of an image deleted while the job was down
        if progress.done == 8:
            doc = backend.get("CXR1_IM-0001-1001", version=progress.version)
            backend.index([{**doc, "image_id": "CXR0_IM-0000-1001"}], version=progress.version)

    with pytest.raises(ReindexError, match="holds 25 documents but the vectors cover 24 images"):
        run_reindex(corpus.config(index), annotator=Counting(cascade), progress=sneak)
    assert backend.live_version() is None and vector_versions(index) == []  # neither text nor vectors went live


# --- shards -------------------------------------------------------------------------------------------


def test_sharded_workers_merge_their_vectors_when_the_last_part_switches(corpus, tmp_path, cascade):
    index = tmp_path / "index"
    first = run_reindex(corpus.config(index, shard=(1, 2), build="job1"), annotator=Counting(cascade))
    assert not first.switched and vector_versions(index) == []
    journal = index / "builds" / "job1" / "journal-1of2.jsonl"
    aside = tmp_path / "elsewhere.jsonl"
    journal.rename(aside)  # as if worker 1 had its own disk
    with pytest.raises(ReindexError, match="must share one --index-dir"):
        run_reindex(corpus.config(index, shard=(2, 2), build="job1"), annotator=Counting(cascade))
    assert EmbeddedTextBackend(index / "text").live_version() is None  # nothing switched
    aside.rename(journal)
    model = Counting(cascade)
    second = run_reindex(corpus.config(index, shard=(2, 2), build="job1"), annotator=model)
    assert model.seen == []  # its part was done: it only merges and switches
    assert second.switched and second.vectors == {"cnn_embedding": 24, "context_vector": 24, "findings": 24}
    for kind in VECTOR_KINDS:
        assert sorted(live_vectors(index, kind).image_ids()) == corpus.ids == text_ids(index)


# --- Elasticsearch ------------------------------------------------------------------------------------


@pytest.mark.es
def test_vectors_follow_the_elasticsearch_alias(corpus, tmp_path, cascade, es_url, capsys):
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings
    from pipelines.cli import main

    settings = ESSettings(url=es_url, index=f"cxrsearch-test-{uuid.uuid4().hex[:10]}")
    backend = ElasticsearchTextBackend(settings)
    index = tmp_path / "index"
    config = corpus.config(index, backend="es", es=settings)
    try:
        first = run_reindex(config, annotator=Counting(cascade))
        home = index / "vectors" / f"es-{settings.index}"
        assert first.switched and first.vectors_dir == str(home / first.version)
        store = live_vectors(index, "context", backend="es", es_settings=settings)
        assert len(store) == backend.count() == 24

        (corpus.images / "CXR4_IM-0004-2001.png").unlink()
        model = Counting(cascade)
        second = run_reindex(config, annotator=model)
        assert model.seen == [] and second.switched and second.unchanged == 23
        assert sorted(p.name for p in home.iterdir()) == [second.version]
        store = live_vectors(index, "embedding", backend="es", es_settings=settings)
        assert len(store) == backend.count() == 23 and "CXR4_IM-0004-2001" not in store

        capsys.readouterr()
        assert main(["similar", "CXR1_IM-0001-1001", "--backend", "es", "--es-url", es_url, "--es-index",
                     settings.index, "--index-dir", str(index), "--k", "2"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("2 image(s) most similar to CXR1_IM-0001-1001") and second.version in out
    finally:
        names = list(backend.client.indices.get(index=f"{settings.index}*", allow_no_indices=True))
        if names:
            backend.client.indices.delete(index=",".join(names))
        backend.close()


def test_the_job_api_imports_neither_faiss_nor_torch():
    """`from pipelines.reindex import ReindexJob, ReindexConfig` (the web app's narrow API) stays light:
    a text-only job loads FAISS and torch only when it writes vectors or annotates."""
    code = ("import sys; from pipelines.reindex import ReindexJob, ReindexConfig, ReindexProgress, ReindexCancelled; "
            "print(sorted(m for m in ('faiss', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- vectors in Elasticsearch (--vectors es) ------------------------------------------------------------


@pytest.fixture
def es_settings(es_url):
    """Settings with a unique alias on the real server; every index under it deleted afterwards."""
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

    settings = ESSettings(url=es_url, index=f"cxrsearch-test-{uuid.uuid4().hex[:10]}")
    yield settings
    backend = ElasticsearchTextBackend(settings)
    names = list(backend.client.indices.get(index=f"{settings.index}*", allow_no_indices=True))
    if names:
        backend.client.indices.delete(index=",".join(names))
    backend.close()


def es_vectors_by_id(backend, kind: str) -> dict[str, np.ndarray]:
    from indexer.vectors.live import open_vectors

    store = open_vectors("unused", backend, kind)
    ids = store.image_ids()
    return dict(zip(ids, store.get_vectors(ids)))


@pytest.mark.es
def test_vectors_in_elasticsearch_are_written_switched_and_carried_over(corpus, tmp_path, cascade, reference,
                                                                        es_settings):
    from indexer.text.elasticsearch import ElasticsearchTextBackend
    from indexer.vectors.es_knn import EsVectorIndex, knn_versions
    from indexer.vectors.live import has_vectors, open_vectors

    backend = ElasticsearchTextBackend(es_settings)
    index = tmp_path / "index"
    config = corpus.config(index, backend="es", es=es_settings, vector_backend="es")

    def explode(progress):  # a worker dies after two batches: nothing goes live
        if progress.done >= 8:
            raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        run_reindex(config, annotator=Counting(cascade), progress=explode)
    assert backend.live_version() is None
    first = run_reindex(config, annotator=Counting(cascade))  # resumes the build
    assert first.resumed == 8 and first.switched and first.vector_backend == "es"
    assert first.vectors == {"cnn_embedding": 24, "context_vector": 24, "findings": 24}
    assert not (index / "vectors").exists()  # nothing in FAISS files
    live = LiveVectors(index, backend)
    version, store = live.get("context")
    assert version == first.version and isinstance(store, EsVectorIndex) and len(store) == 24
    assert has_vectors(index, backend, version, "embedding")
    for kind in VECTOR_KINDS:  # the same vectors as the FAISS reference run, within float32 rounding
        got = es_vectors_by_id(backend, kind)
        assert sorted(got) == sorted(reference[kind]) == sorted(all_es_ids(backend))
        for image_id, vector in reference[kind].items():
            np.testing.assert_allclose(got[image_id], vector, atol=1e-5)
    hits = store.similar("CXR1_IM-0001-1001", 5, filters={"view": "lateral"})
    docs = backend.get_many(list(hits.image_ids))
    assert len(hits) == 5 and all(docs[i]["view"] == "lateral" for i in hits.image_ids)
    _, findings = live.get("findings")       # the asymmetric findings search on the kNN index = brute force
    query = findings_query(findings.get_vectors(["CXR1_IM-0001-1001"]))
    ids = sorted(reference["findings"])
    exact = np.stack([reference["findings"][i] for i in ids]) @ query[0]
    found = findings.search(query, 5)[0]
    fifth = np.sort(exact)[::-1][4]      # this untrained cascade gives near ties: every hit is among the best 5
    assert len(found) == 5 and all(exact[ids.index(i)] >= fifth - 1e-4 for i in found.image_ids)
    np.testing.assert_allclose(found.scores, np.sort(exact)[::-1][:5], atol=1e-3)

    (corpus.images / "CXR4_IM-0004-2001.png").unlink()
    model = Counting(cascade)
    second = run_reindex(config, annotator=model)
    assert model.seen == [] and second.switched and second.unchanged == 23  # carried over from the live kNN index
    version, store = live.get("embedding")
    assert version == second.version and len(store) == 23 and "CXR4_IM-0004-2001" not in store
    assert sorted(knn_versions(backend.client, es_settings.index)) == [second.version]  # the old ones went
    assert isinstance(open_vectors(index, backend, "context"), EsVectorIndex)
    backend.close()


def all_es_ids(backend) -> list[str]:
    return sorted(h.image_id for h in backend.search("", k=1000, facets=()).hits)


def test_es_vectors_need_the_es_text_backend(corpus, tmp_path):
    with pytest.raises(ReindexError, match="--vectors es needs the Elasticsearch text backend"):
        run_reindex(corpus.config(tmp_path / "index", vector_backend="es"))
    with pytest.raises(ReindexError, match="vector backend 'milvus' is unknown; valid: faiss, es"):
        run_reindex(corpus.config(tmp_path / "index", vector_backend="milvus"))
