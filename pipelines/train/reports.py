"""Markdown pages of the evaluations in pipelines.train.analysis (concept AUC, pointing game, similar images)."""
from __future__ import annotations


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def concept_auc_markdown(result: dict, header: str) -> str:
    """Per-concept AUC table, best first."""
    lines = ["# Concept head: ROC AUC per concept key", "", header, ""]
    if not result["table"]:
        return "\n".join(lines + [result.get("note", "no concepts"), ""])
    s = result["summary"]
    lines += [f"Split `{result['split']}` ({result['images']} images): {s['concepts']} concepts scored, "
              f"mean AUC {_num(s['mean_auc'])}, median {_num(s['median_auc'])}. A concept with no positive "
              "image in the split has no AUC.", "", "| concept | AUC | positives |", "|---|---|---|"]
    rows = sorted(result["table"], key=lambda r: (r["auc"] is None, -(r["auc"] or 0)))
    lines += [f"| `{r['concept']}` | {_num(r['auc'])} | {r['positives']} |" for r in rows]
    return "\n".join(lines) + "\n"


def pointing_markdown(result: dict, header: str) -> str:
    """Pointing-game accuracy per finding, for the true and the predicted label's map."""
    truth, predicted = result["truth"], result["predicted"]
    lines = ["# Pointing game: does the class activation map's peak fall inside the drawn region?", "", header, "",
             f"Split `{truth['split']}`, images with a single mined finding (so every drawn box is that finding), "
             f"box margin {truth['tolerance_px']} px in the 256 px frame. `chance`: the share of the image the "
             "boxes (with that margin) cover, a random point's hit rate. "
             "`nothing drawn`: the finding has nothing to show in that view (not scored).", "",
             f"Overall: map of the true label {_num(truth['accuracy'])} ({truth['images']} images), of the "
             f"predicted label {_num(predicted['accuracy'])}; chance {_num(truth['chance'])}.", "",
             "| finding | images | hits (true label) | accuracy | predicted label's map | chance | nothing drawn |",
             "|---|---|---|---|---|---|---|"]
    for label, row in truth["per_finding"].items():
        other = predicted["per_finding"].get(label, {})
        lines.append(f"| {label} | {row['images']} | {row['hits']} | {_num(row['accuracy'])} | "
                     f"{_num(other.get('accuracy'))} | {_num(row['chance'])} | {row['nothing_drawn']} |")
    return "\n".join(lines) + "\n"


def similar_markdown(result: dict, header: str) -> str:
    """P@k per vector kind and pool, with the label prior, and per label for the 'all' pool.

    Two hit rules side by side: the neighbour has the query's mined label (issue 10's measure), and
    the neighbour's report carries the query's finding among its MeSH terms (`shares_finding`).
    """
    lines = ["# Similar images that share the finding", "", header, ""]
    first = next(iter(next(iter(result.values())).values()))
    lines += [f"Queries: abnormal images of the `test` split with a mined label ({first['queries']}); neighbours: "
              f"the {first['k']} nearest by cosine among images of OTHER reports (for `findings`, the index's "
              "asymmetric search: the probability that both images show the same single finding, "
              "models/findings.py). Same label: a hit when the "
              "neighbour has the query's mined label. Pool `all`: every image (one without a mined label never "
              "counts as a hit), as the index holds them; `labelled`: only images with a mined label. Shares the "
              "finding: a hit when the neighbour's report lists the query's finding among its MeSH terms (a "
              "report with several findings has no mined label, so the first rule misses it). Prior: the share "
              "of candidates that would be hits (what random neighbours would score). Both rules read the "
              "reports' MeSH terms, never generated text. Same view: the share of the neighbours with the "
              "query's projection (frontal / lateral).", "",
              "| pool | vector kind | P@k same label | prior | P@k shares the finding | prior | same view |",
              "|---|---|---|---|---|---|---|"]
    for pool, kinds in result.items():
        for kind, r in kinds.items():
            lines.append(f"| {pool} | {kind} | {_num(r['precision'])} | {_num(r['prior'], 4)} | "
                         f"{_num(r.get('shares'))} | {_num(r.get('shares_prior'), 4)} | {_num(r.get('same_view'))} |")
    kinds = result["all"]
    names = list(kinds)
    lines += ["", "Per label, pool `all` (P@k same label; then shares the finding):", "",
              "| label | queries | " + " | ".join(names) + " | prior | "
              + " | ".join(f"{n} (shares)" for n in names) + " | prior (shares) |",
              "|---|---|" + "---|" * (2 * len(names) + 2)]
    for label, row in kinds[names[0]]["per_label"].items():
        same = [_num(kinds[n]["per_label"][label]["precision"]) for n in names]
        shares = [_num(kinds[n]["per_label"][label].get("shares")) for n in names]
        lines.append(f"| {label} | {row['queries']} | " + " | ".join(same) + f" | {_num(row['prior'], 4)} | "
                     + " | ".join(shares) + f" | {_num(row.get('shares_prior'), 4)} |")
    return "\n".join(lines) + "\n"


def confusion_markdown(result: dict, header: str, split: str) -> str:
    """Per mined label accuracy and its most common wrong predictions."""
    lines = [f"# Per-label accuracy on the `{split}` split", "", header, "",
             "| label | images | correct | accuracy | most often predicted instead |", "|---|---|---|---|---|"]
    for label, r in result.items():
        wrong = ", ".join(f"{k} ({v})" for k, v in r["confused_with"].items()) or "-"
        lines.append(f"| {label} | {r['images']} | {r['correct']} | {r['accuracy']:.2f} | {wrong} |")
    return "\n".join(lines) + "\n"
