"""The reindex job's parts on a real local Dask cluster: one build, one switch, the same content as one process."""
from __future__ import annotations

import numpy as np
import pytest

from indexer.vectors import VECTOR_KINDS
from pipelines.cli import main
from pipelines.reindex import ReindexError, run_reindex
from pipelines.reindex.engine import run_on_dask
from tests.pipelines.test_reindex import SmallCorpus, all_docs
from tests.pipelines.test_reindex_vectors import make_checkpoint, vectors_by_id

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # a cluster of worker processes: 10-30 s on 2 shared cores


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> SmallCorpus:
    return SmallCorpus(tmp_path_factory.mktemp("engine") / "corpus")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("model") / "cascade.pt")


def test_three_parts_on_a_local_cluster_equal_one_process(corpus, checkpoint, tmp_path):
    reference = run_reindex(corpus.config(tmp_path / "reference", checkpoint=checkpoint))
    config = corpus.config(tmp_path / "index", checkpoint=checkpoint)

    result = run_on_dask(config, parts=3, workers=2, progress=False)
    assert sorted(p["part"] for p in result.parts) == ["1/3", "2/3", "3/3"]
    switched = [p for p in result.parts if p["switched"]]
    assert len(switched) == 1 and switched[0]["live_version"] == result.build  # one part switched, once
    assert sum(p["images"] for p in result.parts) == reference.images == 27
    assert sum(p["indexed"] for p in result.parts) == reference.indexed == 24
    assert switched[0]["vectors"] == {"cnn_embedding": 24, "context_vector": 24, "findings": 24}
    assert "live: " + result.build in result.format()

    docs, expected = all_docs(tmp_path / "index"), all_docs(tmp_path / "reference")
    assert sorted(docs) == sorted(expected)
    for image_id, doc in expected.items():  # same content (the vectors came from the same model)
        assert docs[image_id] == doc
    for kind in VECTOR_KINDS:
        got, want = vectors_by_id(tmp_path / "index", kind), vectors_by_id(tmp_path / "reference", kind)
        assert sorted(got) == sorted(want)
        for image_id, vector in want.items():
            np.testing.assert_allclose(got[image_id], vector, atol=1e-5)

    again = run_on_dask(config, parts=3, workers=2, progress=False)  # idempotent: nothing changed, nothing switched
    assert again.switched is not None and again.switched["nothing_changed"]
    assert not any(p["switched"] for p in again.parts)


def test_cli_engine_dask_and_its_errors(corpus, tmp_path, capsys):
    args = ["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
            str(corpus.reports), "--index-dir", str(tmp_path / "index"), "--batch-size", "4", "--no-progress"]
    assert main([*args, "--engine", "dask", "--parts", "2", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "reindex on dask (local cluster, 2 worker processes)" in out and "2 parts" in out
    assert len(all_docs(tmp_path / "index")) == 24
    assert main([*args, "--engine", "dask", "--shard", "1/2"]) == 1
    assert "give --parts N, not --shard" in capsys.readouterr().err
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert "need --engine dask" in capsys.readouterr().err
    with pytest.raises(ReindexError, match="cannot reach the Dask scheduler tcp://127.0.0.1:1"):
        run_on_dask(corpus.config(tmp_path / "other"), parts=2, scheduler="tcp://127.0.0.1:1", progress=False)
