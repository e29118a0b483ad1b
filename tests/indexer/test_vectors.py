"""Tests of the vector backends: the FAISS store (every index type against numpy brute force) and ES kNN."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import faiss
import numpy as np
import pytest

from indexer.errors import (
    DimensionMismatch,
    GpuUnavailable,
    IndexUnavailable,
    InvalidVectorConfig,
    InvalidVectors,
    ModelVersionMismatch,
    UnknownImageId,
    VectorStoreCorrupt,
    VectorStoreNotFound,
)
from indexer.text.elasticsearch import ESSettings
from indexer.vectors import faiss_files
from indexer.vectors.base import VectorReader
from indexer.vectors.es_knn import EsVectorIndex, score_to_inner_product
from indexer.vectors.faiss_config import (
    VectorStoreConfig,
    choose_device,
    gpu_support,
    min_train_vectors,
    target_index_type,
)
from indexer.vectors.faiss_store import VectorStore
from pipelines.bench.vectors import exact_search, recall_at_k, synthetic_vectors

N, DIM, K = 3000, 64, 10
# ivf_pq at 6 bits needs 39 * 64 = 2,496 training vectors, so N = 3,000 builds every type.
CONFIGS = {
    "flat": VectorStoreConfig(index_type="flat"),
    "ivf_flat": VectorStoreConfig(index_type="ivf_flat"),
    "hnsw": VectorStoreConfig(index_type="hnsw", hnsw_m=16, ef_construction=40),
    "ivf_pq": VectorStoreConfig(index_type="ivf_pq", pq_m=16, pq_nbits=6),
}
# Recall@10 against numpy brute force on N seeded clustered vectors; measured 1.0 / 0.915 / 0.994 / 0.768.
MIN_RECALL = {"flat": 1.0, "ivf_flat": 0.85, "hnsw": 0.95, "ivf_pq": 0.5}


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """One OpenMP thread: the 2 cores are shared, and busy-waiting threads slow FAISS down when oversubscribed."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image ids, (N, DIM) base vectors, (100, DIM) queries from the same distribution)."""
    ids = [f"CXR{i}_IM-{i:04d}-1001" for i in range(N)]
    return ids, synthetic_vectors(N, DIM, seed=0), synthetic_vectors(100, DIM, seed=1, structure_seed=0)


@pytest.fixture(scope="module")
def built(data) -> dict[str, VectorStore]:
    """One store per index type over the same data (built once: IVF-PQ training is the slow part)."""
    ids, x, _ = data
    return {name: VectorStore.build(ids, x, model_version="it1-test", config=cfg) for name, cfg in CONFIGS.items()}


def _all_ids(store: VectorStore, probe: np.ndarray) -> list[str]:
    """Every id a search can return: k = len(store), every IVF list probed."""
    store.set_search_params(nprobe=4096, ef_search=4096)
    return list(store.search(probe, len(store))[0].image_ids)


# --- recall against brute force --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_recall_at_10_against_numpy_brute_force(built, data, name):
    ids, x, queries = data
    store = built[name]
    assert store.index_type == name  # N is large enough for every type to be built as asked
    _, rows = exact_search(x, queries, K)  # (Q, K) ground truth
    truth = [[ids[j] for j in row] for row in rows]
    found = [hits.image_ids for hits in store.search(queries, K)]
    recall = recall_at_k(found, truth, K)
    assert recall >= MIN_RECALL[name], f"{name}: recall@10 {recall:.3f} < {MIN_RECALL[name]}"
    assert all(len(hits) == K for hits in found)


def test_flat_scores_equal_numpy_inner_products(built, data):
    _, x, queries = data
    scores, _ = exact_search(x, queries, K)
    got = np.array([hits.scores for hits in built["flat"].search(queries, K)])  # (Q, K)
    np.testing.assert_allclose(got, scores, atol=1e-5)


def test_exact_search_matches_full_sort():
    rng = np.random.default_rng(3)
    base, queries = rng.standard_normal((500, 8)), rng.standard_normal((4, 8))
    scores, rows = exact_search(base, queries, 7, chunk=64)  # chunking must not change the answer
    full = queries @ base.T
    np.testing.assert_array_equal(rows, np.argsort(-full, axis=1)[:, :7])
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :7], rtol=1e-5)


# --- persistence -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_round_trip(built, data, name, tmp_path):
    _, _, queries = data
    store = built[name]
    store.save(tmp_path / "store")
    loaded = VectorStore.load(tmp_path / "store", expect_dimension=DIM, expect_model_version="it1-test")
    assert (loaded.index_type, len(loaded), loaded.dimension) == (name, N, DIM)
    assert loaded.image_ids() == store.image_ids()
    before, after = store.search(queries[:20], K), loaded.search(queries[:20], K)
    assert [h.image_ids for h in after] == [h.image_ids for h in before]
    np.testing.assert_allclose([h.scores for h in after], [h.scores for h in before], atol=1e-6)
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert meta["dimension"] == DIM and meta["count"] == N and meta["index_type"] == name
    assert meta["model_version"] == "it1-test" and meta["kind"] == "context_vector"
    assert meta["config"]["index_type"] == name
    if name.startswith("ivf"):
        assert meta["build_params"]["nlist"] >= 1 and meta["build_params"]["nprobe"] >= 1


@pytest.mark.parametrize("name", list(CONFIGS))
def test_load_memory_maps_the_index_file(built, name, tmp_path):
    built[name].save(tmp_path)
    index_file = str(tmp_path / json.loads((tmp_path / "meta.json").read_text())["files"]["index"])
    mapped = VectorStore.load(tmp_path, mmap=True)
    in_memory = VectorStore.load(tmp_path, mmap=False)
    assert mapped.mmapped and not in_memory.mmapped
    if os.path.exists("/proc/self/maps"):
        maps = Path("/proc/self/maps").read_text()
        assert index_file in maps  # the file itself backs the vectors
    del mapped, in_memory


def test_changing_a_mapped_store_copies_it_first(data, tmp_path):
    ids, x, _ = data
    VectorStore.build(ids[:500], x[:500]).save(tmp_path)
    store = VectorStore.load(tmp_path)
    assert store.mmapped
    result = store.add(["new-image"], -x[0])  # FAISS would abort the process if the mapped index grew
    assert result.added == 1 and not store.mmapped
    assert VectorStore.load(tmp_path).image_ids() == ids[:500]  # the file is unchanged until save()
    store.save()
    reloaded = VectorStore.load(tmp_path)
    assert len(reloaded) == 501
    assert reloaded.search(-x[0], 1)[0].image_ids == ("new-image",)


def test_save_keeps_one_generation_and_no_temporary_files(data, tmp_path):
    ids, x, _ = data
    store = VectorStore.build(ids[:100], x[:100])
    store.save(tmp_path)
    reader = VectorStore.load(tmp_path)  # memory-maps generation 1
    assert not reader.is_stale()
    store.remove(ids[:10])
    store.save()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock")
    assert names == ["ids.000002.json", "index.000002.faiss", "meta.json"]
    assert len(VectorStore.load(tmp_path)) == 90
    assert reader.is_stale() and len(reader.search(x[0], 100)[0]) == 100  # still serves its generation


def test_failed_save_leaves_the_previous_store_live(data, tmp_path, monkeypatch):
    ids, x, _ = data
    store = VectorStore.build(ids[:100], x[:100])
    store.save(tmp_path)
    store.add(ids[100:150], x[100:150])

    def broken_write(index, path):  # a crash half-way through writing the new index file
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(faiss_files.faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    monkeypatch.undo()
    live = VectorStore.load(tmp_path)
    assert len(live) == 100 and live.image_ids() == ids[:100]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_errors_name_the_problem(data, tmp_path):
    ids, x, _ = data
    with pytest.raises(VectorStoreNotFound, match="no vector store at"):
        VectorStore.load(tmp_path / "missing")
    VectorStore.build(ids[:50], x[:50], model_version="it0-aaa").save(tmp_path)
    with pytest.raises(ModelVersionMismatch, match="'it0-aaa'.*'it1-bbb'"):
        VectorStore.load(tmp_path, expect_model_version="it1-bbb")
    with pytest.raises(DimensionMismatch, match="64-d.*128-d"):
        VectorStore.load(tmp_path, expect_dimension=128)
    meta_file = tmp_path / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "count": 49}))
    with pytest.raises(VectorStoreCorrupt, match="count 49"):
        VectorStore.load(tmp_path)


# --- changes: add, update, remove ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_update_and_remove_leave_no_stale_ids(data, name, tmp_path):
    ids, x, _ = data
    store = VectorStore.build(ids, x, config=CONFIGS[name])
    removed, updated = ids[:40], ids[40:50]
    new_vectors = synthetic_vectors(10, DIM, seed=99, structure_seed=5)  # far from the old ones
    result = store.add(updated, new_vectors)
    assert (result.added, result.updated) == (0, 10)
    assert store.remove(removed + ["never-stored"]) == 40
    assert store.remove(removed) == 0  # idempotent
    assert len(store) == N - 40 and removed[0] not in store and updated[0] in store

    for candidate in (store, _reloaded(store, tmp_path)):
        returned = _all_ids(candidate, x[0])
        assert sorted(returned) == sorted(ids[40:])  # every live id once, no removed id
        for i, image_id in enumerate(updated):  # found by the new vector, not the old one
            assert candidate.search(new_vectors[i], 1)[0].image_ids == (image_id,)
        old_hits = candidate.search(x[40:50], 1)
        assert sum(h.image_ids[0] in updated for h in old_hits) == 0


def _reloaded(store: VectorStore, root: Path) -> VectorStore:
    store.save(root / store.index_type)
    return VectorStore.load(root / store.index_type)


def test_get_vectors_and_similar(data):
    ids, x, _ = data
    store = VectorStore.build(ids[:200], x[:200])
    np.testing.assert_allclose(store.get_vectors(ids[3:5]), x[3:5], atol=1e-6)
    hits = store.similar(ids[3], 5)
    assert ids[3] not in hits.image_ids and len(hits) == 5
    assert store.similar(ids[3], 5, include_self=True).image_ids[0] == ids[3]
    with pytest.raises(UnknownImageId, match="'nope'"):
        store.get_vectors(["nope"])


def test_auto_switches_index_type_as_the_store_grows(data):
    ids, x, _ = data
    gib_2600 = 2600 * DIM * 4 / 2**30  # raw size of 2,600 vectors
    config = VectorStoreConfig(exact_max=1200, ivf_flat_max_gib=gib_2600, pq_nbits=6, pq_m=16)
    store = VectorStore(DIM, config=config)
    seen = []
    for start in range(0, N, 500):
        store.add(ids[start : start + 500], x[start : start + 500])
        seen.append(store.index_type)
    assert seen == ["flat", "flat", "ivf_flat", "ivf_flat", "ivf_flat", "ivf_pq"]
    assert len(store) == N
    assert store.search(x[7], 1)[0].image_ids == (ids[7],)  # vectors survived both rebuilds
    assert store.remove(ids[:2000]) == 2000 and store.index_type == "ivf_pq"  # never switches down


def test_target_index_type_thresholds():
    auto = VectorStoreConfig()
    assert [target_index_type(auto, n, 1024) for n in (0, 99_999, 100_000, 2**21, 2**21 + 1)] == [
        "flat", "flat", "ivf_flat", "ivf_flat", "ivf_pq"]  # 2**21 x 1024 x 4 bytes = 8 GiB
    assert target_index_type(auto, 2**21 + 1, 128) == "ivf_flat"  # smaller vectors: IVF-Flat for longer
    assert target_index_type(VectorStoreConfig(index_type="ivf_pq"), 9_983, 64) == "flat"
    assert min_train_vectors("ivf_pq", VectorStoreConfig()) == 39 * 256
    assert target_index_type(VectorStoreConfig(index_type="hnsw"), 0, 64) == "hnsw"


# --- validation ------------------------------------------------------------------------------------


def test_dimension_mismatch_names_both_dimensions():
    store = VectorStore(32, kind="cnn_embedding", model_version="v7")
    with pytest.raises(DimensionMismatch, match=r"dimension 31.*'v7'.*holds 32-d"):
        store.add(["a"], np.ones((1, 31)))
    store.add(["a"], np.ones(32))
    with pytest.raises(DimensionMismatch, match=r"dimension 1024.*32-d"):
        store.search(np.ones((2, 1024)), 3)


def test_empty_store_search_returns_no_hits(tmp_path):
    store = VectorStore(8)
    hits = store.search(np.ones((3, 8)), 5)
    assert [len(h) for h in hits] == [0, 0, 0]
    store.save(tmp_path)
    assert VectorStore.load(tmp_path).search(np.ones(8), 5)[0].image_ids == ()
    store.add(["only"], np.ones(8))
    assert store.search(np.ones(8), 5)[0].image_ids == ("only",)  # k larger than the store


@pytest.mark.parametrize(
    "ids, vectors, message",
    [
        (["a", "b"], np.ones((1, 4)), "2 image ids for 1 vectors"),
        (["a", "a"], np.ones((2, 4)), "repeated within one batch: \\['a'\\]"),
        ([""], np.ones((1, 4)), "non-empty strings"),
        (["a", "b"], np.array([[1, 2, 3, np.nan], [1, 1, 1, 1]]), "rows \\[0\\] contain NaN"),
        (["a", "b"], np.array([[1, 1, 1, 1], [0, 0, 0, 0]]), "rows \\[1\\] are all zeros"),
        (["a"], np.ones((1, 2, 2)), "must be a \\(N, 4\\) array, got shape \\(1, 2, 2\\)"),
    ],
)
def test_invalid_vectors_are_refused_with_the_reason(ids, vectors, message):
    store = VectorStore(4)
    with pytest.raises(InvalidVectors, match=message):
        store.add(ids, vectors)
    assert len(store) == 0


def test_bad_k_and_bad_config_are_refused():
    with pytest.raises(InvalidVectors, match="k=0"):
        VectorStore(4).search(np.ones(4), 0)
    with pytest.raises(InvalidVectorConfig, match="'ivf'.*valid: auto, flat, ivf_flat, hnsw, ivf_pq"):
        VectorStoreConfig(index_type="ivf")
    with pytest.raises(InvalidVectorConfig, match="unknown vector store settings \\['nlists'\\]"):
        VectorStoreConfig.from_dict({"nlists": 4})
    with pytest.raises(InvalidVectorConfig, match="'image'.*cnn_embedding, context_vector"):
        VectorStore(4, kind="image")


# --- device choice (GPU logic as far as a CPU machine allows) ----------------------------------------


@pytest.mark.parametrize(
    "requested, gpu_build, num_gpus, expected",
    [
        ("auto", False, 0, "cpu"),
        ("auto", True, 0, "cpu"),
        ("auto", True, 2, "gpu"),
        ("cpu", True, 2, "cpu"),
        ("gpu", True, 1, "gpu"),
    ],
)
def test_choose_device(requested, gpu_build, num_gpus, expected):
    assert choose_device(requested, gpu_build, num_gpus) == expected


def test_gpu_requested_without_gpu_support_names_the_extra():
    with pytest.raises(GpuUnavailable, match=r"cxrsearch\[gpu\]"):
        choose_device("gpu", False, 0)
    with pytest.raises(GpuUnavailable, match="get_num_gpus\\(\\) == 0"):
        choose_device("gpu", True, 0)


def test_store_uses_the_device_faiss_offers():
    gpu_build, num_gpus = gpu_support()
    assert gpu_build == hasattr(faiss, "StandardGpuResources")
    store = VectorStore(4)
    assert store.device == ("gpu" if gpu_build and num_gpus > 0 else "cpu")
    if store.device == "cpu":
        with pytest.raises(GpuUnavailable):
            VectorStore(4, config=VectorStoreConfig(device="gpu"))


def test_gpu_branch_falls_back_to_cpu_when_the_copy_fails(data, caplog):
    """The GPU search path on a CPU-only faiss: the GPU copy fails, the store keeps answering on CPU."""
    ids, x, _ = data
    store = VectorStore.build(ids[:300], x[:300])
    expected = store.search(x[:3], 5)
    if gpu_support() == (False, 0):
        store._device = "gpu"  # what choose_device() returns on a GPU machine
        with caplog.at_level("WARNING", logger="indexer.vectors.faiss_store"):
            got = store.search(x[:3], 5)
        assert store.device == "cpu" and "searching on CPU" in caplog.text
    else:  # a real GPU: same results as the CPU index
        got = store.search(x[:3], 5)
    assert [h.image_ids for h in got] == [h.image_ids for h in expected]


# --- Elasticsearch kNN (the real server) -----------------------------------------------------------


@pytest.fixture()
def es_index(es_url):
    """A fresh EsVectorIndex on the real server, deleted afterwards."""
    index = EsVectorIndex(f"test-vectors-{uuid.uuid4().hex[:8]}", DIM, model_version="it1-test",
                          settings=ESSettings(url=es_url))
    index.create()
    yield index
    index.delete_index()


@pytest.mark.es
def test_es_knn_matches_faiss_exact_search(es_index, data):
    ids, x, queries = data
    subset_ids, subset = ids[:400], x[:400]
    assert es_index.add(subset_ids, subset, refresh=True).added == 400
    assert es_index.count() == 400
    exact = VectorStore.build(subset_ids, subset).search(queries[:10], K)
    knn = es_index.search(queries[:10], K, num_candidates=400)
    assert recall_at_k([h.image_ids for h in knn], [list(h.image_ids) for h in exact], K) >= 0.95
    for got, want in zip(knn, exact):  # scores converted back to inner products
        want_scores = dict(want.pairs())
        assert all(abs(s - want_scores[i]) < 1e-4 for i, s in got.pairs() if i in want_scores)


@pytest.mark.es
def test_es_update_remove_and_restrict(es_index, data):
    ids, x, _ = data
    es_index.add(ids[:50], x[:50], refresh=True)
    result = es_index.add(ids[:2], -x[:2], refresh=True)  # overwrite two vectors
    assert (result.added, result.updated) == (0, 2) and es_index.count() == 50
    assert es_index.search(-x[0], 1)[0].image_ids == (ids[0],)
    assert es_index.remove([ids[0], "never-stored"], refresh=True) == 1
    assert ids[0] not in es_index.search(-x[0], 50)[0].image_ids
    restricted = es_index.search(x[10], 5, restrict_to=[ids[20], ids[30]])[0]
    assert set(restricted.image_ids) == {ids[20], ids[30]}


@pytest.mark.es
def test_es_mirror_of_a_store_and_dimension_checks(es_index, data):
    ids, x, _ = data
    store = VectorStore.build(ids[:120], x[:120])
    assert es_index.mirror(store) == 120 and es_index.count() == 120
    with pytest.raises(DimensionMismatch, match="holds 64-d vectors, but 32-d"):
        EsVectorIndex(es_index.index, 32, settings=es_index.settings).create()
    with pytest.raises(DimensionMismatch, match="dimension 32"):
        es_index.search(np.ones(32), 3)


def test_es_unreachable_names_the_url():
    index = EsVectorIndex("cxrsearch-vectors", 8, settings=ESSettings(url="http://127.0.0.1:9", request_timeout=2))
    with pytest.raises(IndexUnavailable, match="http://127.0.0.1:9"):
        index.count()


def test_es_score_conversion():
    assert score_to_inner_product(1.0) == 1.0 and score_to_inner_product(0.5) == 0.0
    assert score_to_inner_product(0.0) == -1.0


# --- one reader interface, every backend (FAISS and the real Elasticsearch) ---------------------------

N_READER = 400


def _reader_docs(ids: list[str]) -> dict[str, dict]:
    """Text documents with filter fields: every third image lateral, laterality alternating."""
    return {image_id: {"image_id": image_id, "view": "lateral" if n % 3 == 0 else "frontal",
                       "laterality": ["left" if n % 2 else "right"], "synthetic": True}
            for n, image_id in enumerate(ids)}


@pytest.fixture(params=["faiss", pytest.param("es", marks=pytest.mark.es)])
def reader(request, data):
    """The same N_READER vectors and documents behind each backend's reader."""
    ids, x, _ = data
    ids, x = ids[:N_READER], x[:N_READER]
    docs = _reader_docs(ids)
    if request.param == "faiss":
        store = VectorStore.build(ids, x, model_version="it1-test")
        store.attach_documents(lambda wanted: {i: docs[i] for i in wanted if i in docs})
        yield store
        return
    es_url = request.getfixturevalue("es_url")
    index = EsVectorIndex(f"test-reader-{uuid.uuid4().hex[:8]}", DIM, model_version="it1-test",
                          settings=ESSettings(url=es_url))
    index.create(building=True)
    try:
        index.add(ids, x, documents=docs)
        index.finish_build()
        yield EsVectorIndex.open(index.index, settings=index.settings)
    finally:
        index.delete_index()


def test_reader_interface_and_metadata(reader, data):
    ids = data[0][:N_READER]
    assert isinstance(reader, VectorReader)
    assert (reader.dimension, reader.kind, reader.model_version, len(reader)) == (DIM, "context_vector", "it1-test",
                                                                                  N_READER)
    assert ids[5] in reader and "never-stored" not in reader
    assert sorted(reader.image_ids()) == sorted(ids)
    np.testing.assert_allclose(reader.get_vectors(ids[:3]), data[1][:3], atol=1e-6)
    with pytest.raises(UnknownImageId, match="never-stored"):
        reader.similar("never-stored", 3)


def test_reader_recall_against_exact_search(reader, data):
    ids, x, queries = data
    _, rows = exact_search(x[:N_READER], queries[:20], K)
    truth = [[ids[j] for j in row] for row in rows]
    hits = reader.search(queries[:20], K)
    assert all(len(h) == K for h in hits)
    assert recall_at_k([h.image_ids for h in hits], truth, K) >= 0.95
    best = hits[0]
    assert best.scores == tuple(sorted(best.scores, reverse=True))  # best first, cosine scale
    assert -1.0 <= best.scores[-1] <= best.scores[0] <= 1.0


def test_reader_similar_leaves_the_query_image_out(reader, data):
    ids = data[0]
    hits = reader.similar(ids[7], 5)
    assert len(hits) == 5 and ids[7] not in hits.image_ids
    with_self = reader.similar(ids[7], 5, include_self=True)
    assert with_self.image_ids[0] == ids[7] and abs(with_self.scores[0] - 1.0) < 1e-4


def test_reader_filters_return_k_matching_hits_like_exact_filtered_search(reader, data):
    ids, x, queries = data
    docs = _reader_docs(ids[:N_READER])
    filters = {"view": "frontal", "laterality": ["left"]}
    keep = [n for n, i in enumerate(ids[:N_READER])
            if docs[i]["view"] == "frontal" and docs[i]["laterality"] == ["left"]]
    _, rows = exact_search(x[keep], queries[:10], K)
    truth = [[ids[keep[j]] for j in row] for row in rows]
    hits = reader.search(queries[:10], K, filters=filters)
    for h in hits:
        assert len(h) == K
        assert all(docs[i]["view"] == "frontal" and docs[i]["laterality"] == ["left"] for i in h.image_ids)
    assert recall_at_k([h.image_ids for h in hits], truth, K) >= 0.9
    similar = reader.similar(ids[keep[0]], 4, filters=filters)
    assert len(similar) == 4 and ids[keep[0]] not in similar.image_ids
    assert all(docs[i]["view"] == "frontal" for i in similar.image_ids)


def test_faiss_filters_need_the_documents(data):
    ids, x, _ = data
    store = VectorStore.build(ids[:50], x[:50])
    with pytest.raises(InvalidVectorConfig, match="need the text documents.*open_vectors"):
        store.search(x[0], 3, filters={"view": "frontal"})
    with pytest.raises(Exception, match="unknown filter field 'colour'"):
        store.search(x[0], 3, filters={"colour": "red"})
