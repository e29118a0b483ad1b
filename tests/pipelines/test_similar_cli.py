"""`cxrsearch reindex --checkpoint` then `cxrsearch similar`, end to end through the console entry point."""
from __future__ import annotations

import json

import numpy as np
import pytest

from indexer.text.embedded import EmbeddedTextBackend
from indexer.vectors import live_vectors
from pipelines.cli import main
from tests.pipelines.test_reindex import SmallCorpus
from tests.pipelines.test_reindex_vectors import make_checkpoint, one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(corpus, checkpoint, index dir) of a small corpus reindexed with a cascade checkpoint."""
    root = tmp_path_factory.mktemp("similar")
    corpus = SmallCorpus(root / "corpus")
    checkpoint = make_checkpoint(root / "cascade.pt")
    code = main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                 str(corpus.reports), "--index-dir", str(root / "index"), "--checkpoint", str(checkpoint),
                 "--batch-size", "8", "--no-progress"])
    assert code == 0
    return corpus, checkpoint, root / "index"


def test_reindex_summary_names_the_vectors(setup, capsys):
    corpus, checkpoint, index = setup
    args = ["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
            str(corpus.reports), "--index-dir", str(index), "--checkpoint", str(checkpoint), "--no-progress", "--json"]
    capsys.readouterr()
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nothing_changed"] and summary["unchanged"] == 24 and summary["vectors"] == {}


def test_similar_prints_neighbours_with_score_and_annotation(setup, capsys):
    corpus, _, index = setup
    capsys.readouterr()
    assert main(["similar", "CXR2_IM-0002-1001", "--index-dir", str(index), "--k", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("3 image(s) most similar to CXR2_IM-0002-1001 by findings (model it0-")  # the default
    ranked = [line for line in lines if line.lstrip()[:2] in ("1.", "2.", "3.", "4.")]
    assert len(ranked) == 3
    docs = EmbeddedTextBackend(index / "text").get_many([line.split()[1] for line in ranked])
    scores = []
    for line in ranked:
        image_id, score = line.split()[1], float(line.split()[2])
        assert image_id in corpus.ids and not image_id.startswith("CXR2_")  # other reports only
        assert docs[image_id]["generated_annotation"] in line and line.endswith("[synthetic]")
        scores.append(score)
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0001 for s in scores)
    assert "not clinical likeness" in out


def assert_brute_force_top(hits: list[dict], ids: list[str], scores: np.ndarray, report: str, k: int) -> None:
    """The hits are the k best of `scores` over the images of other reports (ids not starting with `report`;
    the same examination's other view is left out), with those scores, best first."""
    expected = [ids[i] for i in np.argsort(-scores, kind="stable") if not ids[i].startswith(report)][:k]
    got = [h["image_id"] for h in hits]
    assert len(got) == k and set(got) == set(expected)
    np.testing.assert_allclose([h["score"] for h in hits], sorted(scores[[ids.index(i) for i in got]], reverse=True),
                               atol=1e-3)


def test_similar_json_by_embedding_matches_brute_force(setup, capsys):
    corpus, _, index = setup
    capsys.readouterr()
    assert main(["similar", "CXR5_IM-0005-2001", "--index-dir", str(index), "--kind", "embedding", "--k", "5",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "cnn_embedding" and result["query"]["image_id"] == "CXR5_IM-0005-2001"
    assert result["query"]["report_id"] == "5" and result["query"]["view"] == "lateral"
    store = live_vectors(index, "embedding")
    ids = store.image_ids()
    vectors = store.get_vectors(ids)  # (24, E) unit rows
    cosine = vectors @ vectors[ids.index("CXR5_IM-0005-2001")]  # (24,)
    assert_brute_force_top(result["hits"], ids, cosine, "CXR5_", 5)
    assert all(h["annotation"] for h in result["hits"])
    assert main(["similar", "CXR5_IM-0005-2001", "--index-dir", str(index), "--kind", "embedding", "--k", "23",
                 "--same-report", "--json"]) == 0
    assert "CXR5_IM-0005-1001" in {h["image_id"] for h in json.loads(capsys.readouterr().out)["hits"]}


def test_similar_json_by_findings_ranks_by_the_same_single_finding(setup, capsys):
    _, _, index = setup
    capsys.readouterr()
    assert main(["similar", "CXR5_IM-0005-2001", "--index-dir", str(index), "--kind", "findings", "--k", "5",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "findings"
    store = live_vectors(index, "findings")
    ids = store.image_ids()
    stored = store.get_vectors(ids)                        # (24, L + 1): [p, remainder] unit rows
    p = stored[:, :-1]
    q = p[ids.index("CXR5_IM-0005-2001")]
    score = p @ q                                          # the probability of the same single finding
    assert_brute_force_top(result["hits"], ids, score, "CXR5_", 5)
    assert "CXR5_IM-0005-2001" not in {h["image_id"] for h in result["hits"]}


def test_similar_view_same_keeps_the_query_images_view(setup, capsys):
    _, _, index = setup
    capsys.readouterr()
    assert main(["similar", "CXR5_IM-0005-2001", "--index-dir", str(index), "--view", "same", "--k", "4",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["view"] == "same" and len(result["hits"]) == 4
    assert {h["view"] for h in result["hits"]} == {"lateral"} == {result["query"]["view"]}


def test_similar_unknown_image_id_is_a_one_line_error(setup, capsys):
    _, _, index = setup
    assert main(["similar", "CXR0_IM-nope", "--index-dir", str(index)]) == 1
    err = capsys.readouterr().err
    assert "unknown image id 'CXR0_IM-nope'" in err and "24 images" in err and len(err.strip().splitlines()) == 1


def test_similar_without_vectors_says_to_reindex_with_a_checkpoint(setup, tmp_path, capsys):
    corpus, checkpoint, _ = setup
    index = tmp_path / "index"
    assert main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--no-reports",
                 "--index-dir", str(index), "--checkpoint", str(checkpoint), "--no-vectors", "--no-progress"]) == 0
    assert not (index / "vectors").exists()
    assert "vectors: none" in capsys.readouterr().out
    assert main(["similar", "CXR1_IM-0001-1001", "--index-dir", str(index)]) == 1
    err = capsys.readouterr().err
    assert "has no findings vectors" in err and "cxrsearch reindex --checkpoint CKPT" in err
    assert main(["search", "granuloma", "--index-dir", str(index)]) == 0  # text search still works


def test_similar_without_any_index(tmp_path, capsys):
    assert main(["similar", "CXR1_IM-0001-1001", "--index-dir", str(tmp_path / "nothing")]) == 1
    assert "no text index" in capsys.readouterr().err
    assert main(["similar", "CXR1_IM-0001-1001", "--index-dir", str(tmp_path), "--k", "0"]) == 1
    assert "--k 0" in capsys.readouterr().err


def test_similar_shows_the_radiologists_annotation_when_the_cascade_wrote_another():
    from pipelines.cli.similar import format_result

    result = {"image_id": "Q", "kind": "cnn_embedding", "model_version": "m", "version": "v", "synthetic": False,
              "query": {"annotation": "normal", "report_annotation": "nodule lung", "synthetic": False},
              "hits": [{"image_id": "A", "score": 0.9, "annotation": "normal", "report_annotation": "cardiomegaly",
                        "synthetic": False},
                       {"image_id": "B", "score": 0.8, "annotation": "nodule lung", "report_annotation": "nodule lung",
                        "synthetic": False}]}
    lines = format_result(result).splitlines()
    assert lines[2] == "     report (radiologist): nodule lung"
    assert lines[4] == "     report (radiologist): cardiomegaly"
    assert lines[5].startswith("  2. B") and len(lines) == 6  # same annotation: no second line
