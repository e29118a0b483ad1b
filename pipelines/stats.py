"""Corpus statistics: the paper's Table 1, label and split counts, annotation lengths, vocabulary coverage."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from pipelines.corpus import Corpus
from pipelines.labels import term_table
from pipelines.manifest import ManifestEntry
from pipelines.splits import SPLITS


def corpus_stats(corpus: Corpus, entries: list[ManifestEntry], top: int = 20) -> dict:
    """Every number computed from the loaded files; see `format_stats` for the text form."""
    table = term_table(corpus.reports)
    images_per_report = {r.report_id: len(r.image_ids) for r in corpus.reports}

    label_rows: dict[str, dict] = defaultdict(lambda: {"images": 0, "reports": set(), **{s: 0 for s in SPLITS}})
    split_rows = {s: {"images": 0, "reports": set(), "labelled_images": 0} for s in SPLITS}
    for e in entries:
        split_rows[e.split]["images"] += 1
        split_rows[e.split]["reports"].add(e.report_id)
        if e.label is not None:
            row = label_rows[e.label]
            row["images"] += 1
            row["reports"].add(e.report_id)
            row[e.split] += 1
            split_rows[e.split]["labelled_images"] += 1
    labels = [{"label": k, "images": v["images"], "reports": len(v["reports"]), **{s: v[s] for s in SPLITS}}
              for k, v in sorted(label_rows.items(), key=lambda kv: (-kv[1]["images"], kv[0]))]
    splits = {s: {"images": v["images"], "reports": len(v["reports"]), "labelled_images": v["labelled_images"]}
              for s, v in split_rows.items()}

    disease_lengths = [1 + len(r.mesh_major[0].subheadings) for r in corpus.reports
                       if r.image_ids and not r.is_normal]
    labelled = sum(v["images"] for v in label_rows.values())
    result = {
        "corpus": {
            "reports": len(corpus.reports),
            "reports_with_images": sum(1 for n in images_per_report.values() if n),
            "images": corpus.n_images,
            "views": dict(Counter(e.view for e in entries)),
            "load": corpus.summary.to_dict(),
        },
        "table1": [{"term": t.term, "total": t.total, "overlap": t.overlap,
                    "overlap_percent": round(t.overlap_percent, 1)} for t in table[:top]],
        "labels": labels,
        "labelled_images": labelled,
        "labelled_fraction": round(labelled / len(entries), 3) if entries else 0.0,
        "splits": splits,
        "annotation_words": {
            "min": min(disease_lengths, default=0), "max": max(disease_lengths, default=0),
            "mean": round(statistics.mean(disease_lengths), 2) if disease_lengths else 0.0,
            "std": round(statistics.pstdev(disease_lengths), 2) if disease_lengths else 0.0,
        },
    }
    coverage = vocabulary_coverage(corpus)
    if coverage is not None:
        result["vocabulary"] = coverage
    return result


def vocabulary_coverage(corpus: Corpus) -> dict | None:
    """The vocabulary's coverage of the corpus's term occurrences, when the vocabulary is installed."""
    try:
        from indexer.vocabulary import Vocabulary
    except ImportError:
        return None
    return Vocabulary.load().coverage(corpus.reports)


def format_stats(stats: dict) -> str:
    """Plain-text report of `corpus_stats`."""
    c = stats["corpus"]
    out = [f"Open-i IU chest X-ray reports: {c['reports']} reports, {c['reports_with_images']} with images, "
           f"{c['images']} image ids (views: " + ", ".join(f"{k} {v}" for k, v in sorted(c["views"].items())) + ")"]
    skipped = c["load"]["skipped"]
    if skipped:
        out.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    out.append("")
    out.append("Table 1: most frequent MeSH terms (images in total, and with other terms)")
    out.append(f"  {'term':38s} {'total':>6s} {'overlap':>8s} {'%':>5s}")
    for row in stats["table1"]:
        out.append(f"  {row['term']:38s} {row['total']:6d} {row['overlap']:8d} {row['overlap_percent']:5.0f}")
    out.append("")
    out.append(f"Mined labels (single-term patterns in >= 30 images): {len(stats['labels'])} labels, "
               f"{stats['labelled_images']} images ({100 * stats['labelled_fraction']:.0f}% of all)")
    out.append(f"  {'label':38s} {'images':>6s} {'reports':>7s} {'train':>6s} {'val':>5s} {'test':>5s}")
    for row in stats["labels"]:
        out.append(f"  {row['label']:38s} {row['images']:6d} {row['reports']:7d} "
                   f"{row['train']:6d} {row['val']:5d} {row['test']:5d}")
    out.append("")
    out.append("Splits (by report):")
    for name, row in stats["splits"].items():
        out.append(f"  {name:6s} {row['images']:5d} images  {row['reports']:5d} reports  "
                   f"{row['labelled_images']:5d} labelled")
    w = stats["annotation_words"]
    out.append(f"Annotation length of diseased cases (MeSH components of the first term): "
               f"{w['min']}-{w['max']} words, mean {w['mean']}, std {w['std']}")
    if "vocabulary" in stats:
        v = stats["vocabulary"]
        out.append("")
        out.append("Vocabulary coverage of MeSH major term occurrences:")
        for part in ("heads", "subheadings", "total"):
            if part in v:
                out.append(f"  {part:12s} {v[part + '_recognised']:6d} / {v[part]:6d} "
                           f"recognised ({v[part + '_percent']:.1f}%)")
    return "\n".join(out)
