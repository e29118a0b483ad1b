"""The batch reindex job: skips bad images, is idempotent, resumes after a kill, switches atomically, shards."""
from __future__ import annotations

import hashlib
import json
import signal
import struct
import subprocess
import sys
import threading
import uuid
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.documents import GeneratedAnnotation
from indexer.text.embedded import EmbeddedTextBackend
from pipelines.annotator import AnnotatedImage
from pipelines.manifest import ManifestEntry, write_manifest
from pipelines.reindex import ReindexCancelled, ReindexConfig, ReindexError, parse_shard, run_reindex
from pipelines.reindex.stages import in_shard, list_images
from tests.pipelines.xml_fixtures import report_xml

ROOT = Path(__file__).resolve().parents[2]
TERMS = ["normal", "Calcified Granuloma/lung/upper lobe/right", "Cardiomegaly/mild", "Pulmonary Atelectasis/base/left",
         "Opacity/lung/base/right", "Nodule/lung/upper lobe/left"]
N_REPORTS = 12  # two images each: 24 usable images


def write_png(path: Path, seed: int, size: int = 96) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixel data is not there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class SmallCorpus:
    """A manifest, Open-i reports and synthetic-marked PNGs (plus three unusable files) in one folder."""

    def __init__(self, root: Path):
        self.images = root / "images"
        self.reports = root / "reports"
        self.manifest = root / "manifest.jsonl"
        self.images.mkdir(parents=True)
        self.reports.mkdir()
        entries = []
        for n in range(1, N_REPORTS + 1):
            term = TERMS[n % len(TERMS)]
            ids = [f"CXR{n}_IM-{n:04d}-1001", f"CXR{n}_IM-{n:04d}-2001"]
            (self.reports / f"{n}.xml").write_text(report_xml(n, [term], images=ids, sections={
                "FINDINGS": f"Finding number {n}.", "IMPRESSION": f"Impression {term.split('/')[0].lower()}."}))
            for k, image_id in enumerate(ids):
                words = tuple(p.lower() for p in term.split("/"))
                entries.append(ManifestEntry(image_id, str(n), "train" if n % 5 else "test", words[0], words[0],
                                             words, "frontal" if k == 0 else "lateral", (term,)))
                write_png(self.images / f"{image_id}.png", seed=n * 10 + k)
        write_manifest(self.manifest, entries)
        self.ids = sorted(e.image_id for e in entries)
        (self.images / "CXR99_IM-9999-1001.png").write_bytes(b"this is not a png")  # corrupt
        (self.images / "CXR98_IM-9998-1001.png").write_bytes(png_claiming_size(10_000, 10_000))  # oversized
        write_png(self.images / "CXR97_IM-9997-1001.png", seed=1, size=16)  # too small
        (self.images / "SYNTHETIC.json").write_text('{"synthetic": true}')
        (self.images / "notes.txt").write_text("not an image")

    def config(self, index_dir: Path, **kwargs) -> ReindexConfig:
        base = ReindexConfig(images=self.images, index_dir=index_dir, manifest=self.manifest, reports=self.reports,
                             batch_size=4, progress_bar=False)
        return replace(base, **kwargs)


class FakeAnnotator:
    """A deterministic stand-in for the cascade (no model): an annotation derived from the image id."""

    def __init__(self, model_version: str = "test-model-1", fail_on: str | None = None, skip: str | None = None):
        self.model_version = model_version
        self.calls = 0
        self.seen: list[str] = []
        self.fail_on, self.skip = fail_on, skip

    def __call__(self, images):
        self.calls += 1
        self.seen += [i for i, _ in images]
        if self.fail_on and any(i == self.fail_on for i, _ in images):
            raise RuntimeError("model exploded")
        out = []
        for image_id, _path in images:
            if image_id == self.skip:
                out.append(AnnotatedImage(image_id, skip_reason="model cannot read it (wrong_mode)"))
                continue
            words = ("cardiomegaly", "mild") if int(hashlib.md5(image_id.encode()).hexdigest(), 16) % 2 else ("normal",)
            out.append(AnnotatedImage(image_id, GeneratedAnnotation(words, self.model_version, words[0],
                                                                    {words[0]: 0.9})))
        return out


@pytest.fixture
def corpus(tmp_path) -> SmallCorpus:
    return SmallCorpus(tmp_path / "corpus")


def all_docs(index_dir: Path) -> dict[str, dict]:
    backend = EmbeddedTextBackend(index_dir / "text")
    try:
        return backend.get_many([f"CXR{n}_IM-{n:04d}-{k}001" for n in range(1, 100) for k in (1, 2)])
    finally:
        backend.close()


# --- one run ---------------------------------------------------------------------------------------------


def test_reindex_indexes_usable_images_and_skips_bad_ones_with_reasons(corpus, tmp_path):
    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert (summary.images, summary.indexed, summary.unchanged, summary.n_failed) == (27, 24, 0, 0)
    assert dict(summary.skipped) == {"corrupt or not an image": 1, "oversized image (too many pixels)": 1,
                                     "too small to be a radiograph": 1}
    assert summary.examples["corrupt or not an image"] == "CXR99_IM-9999-1001"
    assert summary.switched and summary.documents == 24
    docs = all_docs(tmp_path / "index")
    assert sorted(docs) == corpus.ids
    doc = docs["CXR1_IM-0001-1001"]  # report 1: Calcified Granuloma/lung/upper lobe/right
    assert doc["report_findings"] == "Finding number 1." and doc["synthetic"] is True
    assert doc["laterality"] == ["right"] and doc["view"] == "frontal"
    assert "skipped" in summary.format() and "oversized image" in summary.format()
    assert not (tmp_path / "index" / "builds" / summary.version).exists()  # the journal goes once live


def test_oversized_file_is_skipped(corpus, tmp_path):
    summary = run_reindex(corpus.config(tmp_path / "index", max_file_bytes=1000))
    assert summary.skipped["oversized file (> 1,000 bytes)"] == 24
    assert summary.indexed == 0


def test_second_run_with_nothing_changed_keeps_the_live_version(corpus, tmp_path):
    first = run_reindex(corpus.config(tmp_path / "index"))
    second = run_reindex(corpus.config(tmp_path / "index"))
    assert (second.indexed, second.unchanged) == (0, 24)
    assert second.nothing_changed and not second.switched
    assert second.live_version == first.version
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    assert backend.versions() == [first.version] and backend.count() == 24


def test_changed_and_removed_images_give_a_new_version(corpus, tmp_path):
    first = run_reindex(corpus.config(tmp_path / "index"))
    before = all_docs(tmp_path / "index")
    write_png(corpus.images / "CXR3_IM-0003-1001.png", seed=12345)  # new pixels
    (corpus.images / "CXR4_IM-0004-2001.png").unlink()
    second = run_reindex(corpus.config(tmp_path / "index"))
    assert (second.indexed, second.unchanged) == (1, 22)
    assert second.switched and second.previous_version == first.version
    after = all_docs(tmp_path / "index")
    assert len(after) == 23 and "CXR4_IM-0004-2001" not in after
    assert after["CXR3_IM-0003-1001"]["content_hash"] != before["CXR3_IM-0003-1001"]["content_hash"]
    assert after["CXR5_IM-0005-1001"] == before["CXR5_IM-0005-1001"]
    assert EmbeddedTextBackend(tmp_path / "index" / "text").versions() == [second.version]


# --- annotate ---------------------------------------------------------------------------------------------


def test_annotator_output_is_indexed_and_model_version_decides_reannotation(corpus, tmp_path):
    model = FakeAnnotator("m1")
    run_reindex(corpus.config(tmp_path / "index"), annotator=model)
    assert sorted(model.seen) == corpus.ids  # unusable files never reach the model
    doc = all_docs(tmp_path / "index")["CXR1_IM-0001-1001"]
    assert doc["model_version"] == ["m1"] and doc["generated_annotation"] in ("cardiomegaly mild", "normal")
    assert doc["sources"] == ["report", "generated"]

    again = FakeAnnotator("m1")
    summary = run_reindex(corpus.config(tmp_path / "index"), annotator=again)
    assert again.calls == 0 and summary.nothing_changed  # same content, same model: nothing annotated

    newer = FakeAnnotator("m2")
    summary = run_reindex(corpus.config(tmp_path / "index"), annotator=newer)
    assert len(newer.seen) == 24 and summary.indexed == 24 and summary.switched
    assert all_docs(tmp_path / "index")["CXR1_IM-0001-1001"]["model_version"] == ["m2"]


def test_annotator_skips_and_failures_are_counted_not_fatal(corpus, tmp_path):
    model = FakeAnnotator("m1", fail_on="CXR1_IM-0001-1001", skip="CXR7_IM-0007-2001")
    summary = run_reindex(corpus.config(tmp_path / "index"), annotator=model)
    # the failing image's whole batch of 4 fails; the skipped one is skipped with the model's reason
    assert summary.n_failed == 4 and "annotate failed (RuntimeError: model exploded)" in summary.failed
    assert summary.skipped["model cannot read it (wrong_mode)"] == 1
    assert summary.indexed == 24 - 4 - 1 and summary.switched


# --- resume, atomic switch, cancel ---------------------------------------------------------------------


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from pipelines.reindex import ReindexConfig, run_reindex
images, index_dir, manifest, reports, after = sys.argv[1:]
config = ReindexConfig(images=Path(images), index_dir=Path(index_dir), manifest=Path(manifest),
                       reports=Path(reports), batch_size=4, progress_bar=False)
def progress(p):
    if p.phase == "indexing" and p.done >= int(after):
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
run_reindex(config, progress=progress)
"""


def kill_midway(corpus: SmallCorpus, index_dir: Path, after: int) -> None:
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(corpus.images), str(index_dir), str(corpus.manifest),
                           str(corpus.reports), str(after)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("lose_last_journal_line", [False, True])
def test_killed_job_resumes_with_exact_count_and_content(corpus, tmp_path, lose_last_journal_line):
    reference = run_reindex(corpus.config(tmp_path / "reference"))
    expected = all_docs(tmp_path / "reference")

    kill_midway(corpus, tmp_path / "index", after=12)
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    assert backend.live_version() is None  # nothing went live
    [build] = backend.versions()
    journal = tmp_path / "index" / "builds" / build / "journal-1of1.jsonl"
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 3  # header + three batches of 4
    if lose_last_journal_line:  # the batch was written to the index but the kill came before its journal line
        journal.write_text("\n".join(lines[:-1]) + "\n")

    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.version == build
    assert summary.resumed == (8 if lose_last_journal_line else 12)
    assert summary.indexed == reference.indexed == 24 and summary.n_skipped == 3
    got = all_docs(tmp_path / "index")
    assert got == expected  # same ids, same content, no duplicates
    assert backend.count() == 24


def test_failed_job_leaves_the_live_index_untouched_then_resumes(corpus, tmp_path):
    first = run_reindex(corpus.config(tmp_path / "index"))
    write_png(corpus.images / "CXR8_IM-0008-1001.png", seed=999)

    def explode(progress):
        if progress.done >= 8:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_reindex(corpus.config(tmp_path / "index"), progress=explode)
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    assert backend.live_version() == first.version and backend.count() == 24
    assert len(backend.versions()) == 2  # the unfinished build waits aside

    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.resumed == 8 and summary.switched
    assert summary.indexed + summary.unchanged == 24 and summary.indexed == 1
    assert backend.versions() == [summary.version] and backend.count() == 24


def test_fresh_discards_an_unfinished_build(corpus, tmp_path):
    kill_midway(corpus, tmp_path / "index", after=4)
    summary = run_reindex(corpus.config(tmp_path / "index", fresh=True))
    assert summary.resumed == 0 and summary.indexed == 24
    assert EmbeddedTextBackend(tmp_path / "index" / "text").versions() == [summary.version]


def test_cancel_stops_between_batches_and_the_build_resumes(corpus, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done >= 8:
            cancel.set()

    with pytest.raises(ReindexCancelled, match="resumes"):
        run_reindex(corpus.config(tmp_path / "index"), progress=progress, cancel=cancel)
    assert [p.done for p in seen] == [4, 8] and seen[-1].total == 27 and seen[-1].rate > 0
    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.resumed == 8 and summary.documents == 24


def test_a_journal_line_cut_short_is_cut_off_so_later_lines_count(corpus, tmp_path):
    cancel = threading.Event()

    def stop_at(n):
        def progress(p):
            if p.done >= n:
                cancel.set()
        return progress

    with pytest.raises(ReindexCancelled):
        run_reindex(corpus.config(tmp_path / "index"), progress=stop_at(8), cancel=cancel)
    [journal] = (tmp_path / "index" / "builds").glob("*/journal-1of1.jsonl")
    with open(journal, "a") as fh:
        fh.write('{"indexed": ["CXR')  # the kill came mid-line
    cancel.clear()
    with pytest.raises(ReindexCancelled):
        run_reindex(corpus.config(tmp_path / "index"), progress=stop_at(12), cancel=cancel)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 3 and all(json.loads(line) for line in lines)  # the broken line is gone
    cancel.clear()
    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.resumed == 12 and summary.documents == 24 and sorted(all_docs(tmp_path / "index")) == corpus.ids


def test_a_journal_whose_index_version_is_gone_is_not_resumed(corpus, tmp_path):
    kill_midway(corpus, tmp_path / "index", after=8)
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    [build] = backend.versions()
    backend.drop(build)  # e.g. removed by hand, or the kill came between journal and index creation
    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.resumed == 0 and summary.indexed == 24 and summary.version != build
    assert backend.versions() == [summary.version] and backend.count() == 24
    assert not (tmp_path / "index" / "builds" / build).exists()


def test_changed_inputs_do_not_resume_an_old_build(corpus, tmp_path):
    kill_midway(corpus, tmp_path / "index", after=4)
    corpus.manifest.write_text(corpus.manifest.read_text().replace('"train"', '"val"'))
    summary = run_reindex(corpus.config(tmp_path / "index"))
    assert summary.resumed == 0
    assert all_docs(tmp_path / "index")["CXR1_IM-0001-1001"]["split"] == "val"
    assert EmbeddedTextBackend(tmp_path / "index" / "text").versions() == [summary.version]


# --- shards ------------------------------------------------------------------------------------------------


def test_shards_partition_the_images():
    ids = [f"CXR{n}_IM-{n:04d}-1001" for n in range(500)]
    parts = [{i for i in ids if in_shard(i, (k, 3))} for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == 500 and set().union(*parts) == set(ids)
    assert all(len(p) > 100 for p in parts)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1-2"):
        with pytest.raises(ReindexError, match="--shard"):
            parse_shard(bad)


def test_two_shard_workers_build_one_version_and_the_last_switches(corpus, tmp_path):
    first = run_reindex(corpus.config(tmp_path / "index", shard=(1, 2), build="job1"))
    assert not first.switched and first.parts_done == 1
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    assert backend.live_version() is None
    assert "the worker finishing the last part switches" in first.format()
    second = run_reindex(corpus.config(tmp_path / "index", shard=(2, 2), build="job1"))
    assert second.switched and second.live_version == "job1" and second.parts_done == 2
    assert first.images + second.images == 27 and first.indexed + second.indexed == 24
    assert sorted(all_docs(tmp_path / "index")) == corpus.ids
    with pytest.raises(ReindexError, match="live; name a new build"):
        run_reindex(corpus.config(tmp_path / "index", shard=(1, 2), build="job1"))


def test_list_images_reads_only_image_files_of_the_shard(corpus):
    found = dict(list_images(corpus.images))
    assert len(found) == 27 and "notes" not in found and "SYNTHETIC" not in found
    assert len(list_images(corpus.images, (1, 2))) + len(list_images(corpus.images, (2, 2))) == 27
    with pytest.raises(ReindexError, match="not a folder"):
        list_images(corpus.images / "missing")


def test_copied_limits_agree_with_the_model_loader():
    from models import preprocess
    from pipelines.reindex import stages

    assert (stages.MIN_SIDE, stages.MAX_PIXELS) == (preprocess.MIN_SIDE, preprocess.MAX_PIXELS)


def test_synthetic_flag_follows_the_folder_marker(corpus, tmp_path):
    (corpus.images / "SYNTHETIC.json").unlink()
    run_reindex(corpus.config(tmp_path / "index"))
    assert all_docs(tmp_path / "index")["CXR1_IM-0001-1001"]["synthetic"] is False


def test_nothing_to_index_from_is_an_error(corpus, tmp_path):
    with pytest.raises(ReindexError, match="nothing to index"):
        run_reindex(corpus.config(tmp_path / "index", manifest=None))


# --- Elasticsearch ------------------------------------------------------------------------------------------


@pytest.mark.es
def test_reindex_on_elasticsearch_resumes_and_switches_the_alias(corpus, tmp_path, es_url):
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

    settings = ESSettings(url=es_url, index=f"cxrsearch-test-{uuid.uuid4().hex[:10]}")
    backend = ElasticsearchTextBackend(settings)
    config = corpus.config(tmp_path / "index", backend="es", es=settings)
    try:
        first = run_reindex(config)
        assert first.switched and backend.count() == 24
        assert backend.search("granuloma").total == 4  # reports 1 and 7, two images each

        write_png(corpus.images / "CXR8_IM-0008-1001.png", seed=4242)

        def explode(progress):
            if progress.done >= 8:
                raise RuntimeError("worker died")

        with pytest.raises(RuntimeError):
            run_reindex(config, progress=explode)
        assert backend.live_version() == first.version and backend.count() == 24  # live untouched

        second = run_reindex(config)
        assert second.resumed == 8 and second.switched and second.indexed == 1
        assert backend.live_version() == second.version and backend.versions() == [second.version]
        assert backend.count() == 24

        third = run_reindex(config)
        assert third.nothing_changed and backend.live_version() == second.version
    finally:
        names = list(backend.client.indices.get(index=f"{settings.index}*", allow_no_indices=True))
        if names:
            backend.client.indices.delete(index=",".join(names))
        backend.close()


# --- the real cascade behind --checkpoint -----------------------------------------------------------------


def test_reindex_with_a_cascade_checkpoint(corpus, tmp_path):
    from models.cascade import Cascade
    from models.config import apply_overrides, load_config
    from models.vocab import WordVocabulary

    cfg = apply_overrides(load_config("tiny"), ["cnn.width=0.0625"])  # untrained: the plumbing is under test
    vocab = WordVocabulary.build([("normal",), ("cardiomegaly", "mild"), ("opacity", "lung", "base")])
    checkpoint = Cascade.build(cfg, vocab, ["cardiomegaly", "normal", "opacity"],
                               {"cardiomegaly": "cardiomegaly", "normal": "normal", "opacity": "opacity"}
                               ).save(tmp_path / "cascade.pt")
    summary = run_reindex(corpus.config(tmp_path / "index", checkpoint=checkpoint))
    assert summary.indexed == 24 and summary.model_version.startswith("it0-")
    doc = all_docs(tmp_path / "index")["CXR1_IM-0001-1001"]
    assert doc["model_version"] == [summary.model_version]
    assert doc["predicted_labels"][0] in ("cardiomegaly", "normal", "opacity")
    assert set(doc["label_probabilities"]) == {"cardiomegaly", "normal", "opacity"}
    assert "generated" in doc["sources"]
    assert run_reindex(corpus.config(tmp_path / "index", checkpoint=checkpoint)).nothing_changed
    with pytest.raises(ReindexError, match="no checkpoint"):
        run_reindex(corpus.config(tmp_path / "index", checkpoint=tmp_path / "missing.pt"))
