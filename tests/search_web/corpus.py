"""A small, real index for the web tests: rendered synthetic radiographs, Open-i style reports, the committed cascade.

Built once per test session in a temp folder (about 10 s on 2 cores): 24 reports x 2 views =
48 images, indexed by the real reindex job with the committed tiny checkpoint, so the text
index, both FAISS stores and the upload encoder all agree on one model version.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "checkpoints" / "tiny" / "cascade.pt"
TERMS = [
    ("normal",), ("Calcified Granuloma/lung/upper lobe/right",), ("Cardiomegaly/mild",),
    ("Pulmonary Atelectasis/base/left",), ("Opacity/lung/base/right",), ("Nodule/lung/upper lobe/left",),
    ("Pleural Effusion/right/small",), ("Calcified Granuloma/lung/upper lobe/right", "Cardiomegaly/mild"),
]
N_REPORTS = 24
SIZE = 256


@dataclass
class WebCorpus:
    root: Path
    images: Path
    index_dir: Path
    checkpoint: Path
    ids: list[str]
    terms: dict[str, tuple[str, ...]]

    def config(self, **extra) -> dict:
        return {"TESTING": True, "BACKEND": "embedded", "DATA_DIR": str(self.root), "INDEX_DIR": str(self.index_dir),
                "IMAGES_DIR": str(self.images), "CHECKPOINT": str(self.checkpoint), **extra}


def build(root: Path) -> WebCorpus:
    """Render, write reports and manifest, and run the reindex job with the committed checkpoint."""
    import torch

    from pipelines.manifest import ManifestEntry, write_manifest
    from pipelines.reindex import ReindexConfig, run_reindex
    from pipelines.synth.render import render
    from tests.pipelines.xml_fixtures import report_xml

    images, reports = root / "images", root / "reports" / "ecgen-radiology"
    images.mkdir(parents=True)
    reports.mkdir(parents=True)
    entries, terms = [], {}
    for n in range(1, N_REPORTS + 1):
        mesh = TERMS[n % len(TERMS)]
        ids = [f"CXR{n}_IM-{n:04d}-1001", f"CXR{n}_IM-{n:04d}-2001"]
        heads = " and ".join(t.split("/")[0].lower() for t in mesh)
        (reports / f"{n}.xml").write_text(report_xml(n, list(mesh), images=ids, sections={
            "INDICATION": "Cough and fever.", "FINDINGS": f"There is {heads}." if mesh != ("normal",) else
            "The heart is normal in size. The lungs are clear. No pneumothorax or pleural effusion.",
            "IMPRESSION": f"{heads.capitalize()}." if mesh != ("normal",) else "No acute cardiopulmonary disease."}))
        for k, image_id in enumerate(ids):
            view = "frontal" if k == 0 else "lateral"
            pixels, _ = render(image_id, list(mesh), view, SIZE)
            Image.fromarray(pixels).save(images / f"{image_id}.png")
            words = tuple(p.lower() for p in mesh[0].split("/"))
            entries.append(ManifestEntry(image_id, str(n), "train" if n % 5 else "test", words[0], words[0], words,
                                         view, mesh))
            terms[image_id] = mesh
    (images / "SYNTHETIC.json").write_text('{"synthetic": true}')
    write_manifest(root / "manifest.jsonl", entries)
    index_dir = root / "index"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_reindex(ReindexConfig(images=images, index_dir=index_dir, manifest=root / "manifest.jsonl",
                                            reports=reports, checkpoint=CHECKPOINT, batch_size=16, progress_bar=False))
    finally:
        torch.set_num_threads(threads)
    assert summary.switched and summary.documents == len(entries), summary.format()
    return WebCorpus(root, images, index_dir, CHECKPOINT, sorted(e.image_id for e in entries), terms)


_shared: WebCorpus | None = None


def shared(tmp_path_factory) -> WebCorpus:
    """One corpus per test session, whichever test directory asks first (web and browser tests share it)."""
    global _shared
    if _shared is None:
        _shared = build(tmp_path_factory.mktemp("webcorpus"))
    return _shared
