"""Probes of what limits the cascade's reading (issue 10), on a trained checkpoint; nothing is trained.

    python scripts/probe_reader.py decoding [--checkpoint data/models/tiny/cascade.pt] [--beams 3 5]
    python scripts/probe_reader.py vectors  [--checkpoint data/models/tiny/cascade.pt]
    python scripts/probe_reader.py shifts   [--checkpoint data/models/tiny/cascade.pt]
    python scripts/probe_reader.py findings [--checkpoint data/models/tiny/cascade.pt]

decoding: BLEU-1..4 of the context RNN's annotations on the labelled val and test images (the paper's
protocol, the same first word from the CNN's label) when decoded greedily (what the cascade does), by beam
search, and by minimum-Bayes-risk choice among the beam's hypotheses (the one with the highest expected
BLEU-1 against the others, weighted by their probabilities). If a better search over the same decoder
lifted BLEU, the decoder would not be the limit.

vectors: P@10 of 'same mined label' and of 'shares the finding' for abnormal images
(`pipelines.train.analysis.similar_precision`, the metric of `cxrsearch evaluate --similar`) with other
vectors the checkpoint can give besides the stored CNN embedding: the 17 label probabilities, the concept
head's probabilities, concatenations, a linear discriminant projection of the embedding fitted on the
training split's labelled images, and the embedding's cosine re-ranked by label agreement (cosine + beta x
the dot product of the two images' label probabilities; beta to be chosen on val).

findings: the findings head's two settings (models/findings.py): for each C and concept weight, P@10 on val
with the head fitted on the training split (what chooses), and on test with it fitted on train + val (what
ships). Ranked as the index ranks: the dot product of the two images' mined-label probabilities, OTHER out.

shifts: test-time augmentation. 17-label accuracy (collapsed to the base label) on the labelled val and test
images when the label probabilities are averaged over the image shifted by a few pixels (edges repeated,
as the training augmentation shifts), beside the single unshifted pass the cascade makes.

Numbers on the synthetic corpus measure the software, never clinical accuracy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(checkpoint: Path, data: Path):
    """The cascade, the corpus (images at the checkpoint's stored size) and the CNN's outputs on every image."""
    import torch

    from models.cascade import Cascade
    from models.preprocess import stored_size
    from pipelines.manifest import read_manifest
    from pipelines.settings import manifest_path
    from pipelines.train.cnn_train import predict
    from pipelines.train.data import Corpus, default_image_dir, load_image_set

    torch.set_num_threads(2)
    cascade = Cascade.load(checkpoint, torch.device("cpu")).eval()
    entries = read_manifest(manifest_path(data))
    images = load_image_set([e.image_id for e in entries], default_image_dir(data), stored_size(cascade.config.cnn),
                            progress=False)
    corpus = Corpus.build(entries, images)
    probs, embeddings = predict(cascade.cnn, corpus.images, cascade.config.cnn, torch.device("cpu"), 500)
    return cascade, corpus, probs, embeddings


def beam_search(decoder, embedding, first: int, width: int, vocab) -> list[tuple[list[str], float]]:
    """The `width` most probable annotations (words, log probability) starting from word id `first`."""
    import torch

    from models.vocab import WordVocabulary

    eos, banned = WordVocabulary.eos_id, [WordVocabulary.pad_id, WordVocabulary.unk_id]
    beams = [([first], 0.0, decoder.init_state(embedding.unsqueeze(0)), False)]
    for _ in range(decoder.max_words - 1):
        grown = []
        for words, logp, state, done in beams:
            if done:
                grown.append((words, logp, state, True))
                continue
            logits, new_state = decoder.step(torch.tensor([words[-1]]), state)
            logits[0, banned] = float("-inf")
            top = torch.topk(torch.log_softmax(logits[0], -1), width)
            grown += [(words + [i], logp + v, new_state, i == eos)
                      for v, i in zip(top.values.tolist(), top.indices.tolist())]
        beams = sorted(grown, key=lambda b: -b[1])[:width]
        if all(b[3] for b in beams):
            break
    out = []
    for words, logp, _, _ in beams:
        ids = [w for w in words if w != eos]
        out.append((vocab.decode(ids + [eos] * (decoder.max_words - len(ids))), logp))
    return out


def minimum_bayes_risk(hypotheses: list[tuple[list[str], float]]) -> list[str]:
    """The hypothesis with the highest BLEU-1 expected against the others, weighted by their probabilities."""
    import numpy as np

    from models.bleu import bleu_n

    weights = np.exp(np.array([logp for _, logp in hypotheses]) - max(logp for _, logp in hypotheses))
    weights /= weights.sum()
    return max((words for words, _ in hypotheses),
               key=lambda h: sum(w * bleu_n(ref, h, 1) for (ref, _), w in zip(hypotheses, weights)))


def decoding(args: argparse.Namespace) -> None:
    import torch

    from models.bleu import bleu_table, format_bleu
    from pipelines.train.evaluate import eval_rows
    from pipelines.train.rnn_train import generate

    cascade, corpus, probs, embeddings = load(args.checkpoint, args.data)
    cell = cascade.config.context_rnn
    decoder = cascade.decoders[cell].eval()
    print(f"{args.checkpoint}: {cell.upper()} BLEU-1/2/3/4 on the labelled images (first word from the CNN's label)")
    print("\n| decoding | val | test |\n|---|---|---|")
    rows = {split: eval_rows(corpus, split, "labelled") for split in ("val", "test")}
    refs = {s: [list(corpus.entries[r].words[:decoder.max_words]) for r in rs] for s, rs in rows.items()}
    first = {s: cascade.first_word_ids(probs[rs].argmax(1)) for s, rs in rows.items()}
    table: dict[str, dict[str, str]] = {"greedy (the cascade's)": {}}
    with torch.no_grad():
        for split, rs in rows.items():
            greedy = generate(decoder, cascade.vocab, embeddings[rs], first[split], torch.device("cpu"))
            table["greedy (the cascade's)"][split] = format_bleu(bleu_table(refs[split], greedy))
            for width in args.beams:
                nbest = [beam_search(decoder, embeddings[r], int(f), width, cascade.vocab)
                         for r, f in zip(rs, first[split].tolist())]
                table.setdefault(f"beam {width}", {})[split] = format_bleu(
                    bleu_table(refs[split], [n[0][0] for n in nbest]))
                table.setdefault(f"minimum Bayes risk over beam {width}", {})[split] = format_bleu(
                    bleu_table(refs[split], [minimum_bayes_risk(n) for n in nbest]))
    for name, cells in table.items():
        print(f"| {name} | {cells['val']} | {cells['test']} |")
    # where greedy BLEU-1 is lost on the test images: a wrong first word (the CNN's label) or the words after it
    from models.bleu import bleu_n

    rs = rows["test"]
    greedy = generate(decoder, cascade.vocab, embeddings[rs], first["test"], torch.device("cpu"))
    groups: dict[str, list[float]] = {}
    for ref, hyp in zip(refs["test"], greedy):
        fit = "same length" if len(hyp) == len(ref) else "a word too few or too many"
        key = "first word wrong" if hyp[0] != ref[0] else f"first word right, {fit}"
        groups.setdefault(key, []).append(100 * bleu_n(ref, hyp, 1))
    print("\n| test images, greedy | images | mean BLEU-1 |\n|---|---|---|")
    for key in sorted(groups):
        print(f"| {key} | {len(groups[key])} | {sum(groups[key]) / len(groups[key]):.1f} |")


def vectors(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from pipelines.train.analysis import similar_precision

    cascade, corpus, probs, embeddings = load(args.checkpoint, args.data)
    with torch.no_grad():
        concepts = (torch.sigmoid(cascade.cnn.concept_logits(embeddings)).numpy() if cascade.cnn.concept_head
                    is not None else None)
    stored = cascade.search_embedding(embeddings).numpy()

    def unit(x: np.ndarray) -> np.ndarray:
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    labels = probs.numpy()
    train = np.array([e.split == "train" and bool(e.label) for e in corpus.entries])
    names = np.array([e.label or "" for e in corpus.entries])
    lda = LinearDiscriminantAnalysis().fit(stored[train], names[train]).transform(stored)
    kinds = {"CNN embedding, centred (what the index stores)": stored,
             "linear discriminant projection of the embedding (fitted on train)": lda,
             "label probabilities": labels, "square roots of the label probabilities": np.sqrt(labels),
             "embedding + label probabilities (each unit length)": np.hstack([unit(stored), unit(np.sqrt(labels))])}
    if concepts is not None:
        kinds["concept probabilities, centred"] = concepts - concepts.mean(0)
        kinds["embedding + concept probabilities (each unit length)"] = np.hstack(
            [unit(stored), unit(concepts - concepts.mean(0))])
    print(f"{args.checkpoint}: P@10 of 'same mined label' (and of 'shares the finding'), abnormal images, "
          "neighbours from other reports")
    print("\n| vectors | test, whole index | test, labelled images | val, whole index |\n|---|---|---|---|")

    def row(name: str, scores=None, v=None) -> None:
        runs = [similar_precision(v, corpus, 10, split, pool, scores=scores)
                for split, pool in (("test", "all"), ("test", "labelled"), ("val", "all"))]
        print(f"| {name} | " + " | ".join(f"{r['precision']:.3f} ({r['shares']:.3f})" for r in runs) + " |")

    for name, v in kinds.items():
        row(name, v=v)
    unit_stored = unit(stored)
    for beta in (0.1, 0.5, 2.0):
        row(f"embedding cosine + {beta} x label agreement",
            scores=lambda q, b=beta: unit_stored @ unit_stored[q] + b * (labels @ labels[q]), v=stored)


def shifts(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from models.preprocess import to_input
    from models.relabel import base_label
    from pipelines.train.evaluate import eval_rows

    cascade, corpus, _, _ = load(args.checkpoint, args.data)
    cfg = cascade.config.cnn

    @torch.no_grad()
    def probabilities(rows: list[int], dy: int, dx: int, pad: int = 8) -> torch.Tensor:
        out = []
        for start in range(0, len(rows), 250):
            x = torch.as_tensor(corpus.images[rows[start:start + 250]])
            size = x.shape[1]
            padded = torch.nn.functional.pad(x.float().unsqueeze(1), (pad,) * 4, mode="replicate")[:, 0]
            moved = padded[:, pad + dy:pad + dy + size, pad + dx:pad + dx + size].round().to(torch.uint8)
            logits, _ = cascade.cnn(to_input(moved, cfg))
            out.append(torch.softmax(logits, -1))
        return torch.cat(out)

    sets = {"none (the cascade's single pass)": [(0, 0)],
            "5: centre and +-3 px up/down/left/right": [(0, 0), (3, 0), (-3, 0), (0, 3), (0, -3)],
            "5: centre and +-4 px up/down/left/right": [(0, 0), (4, 0), (-4, 0), (0, 4), (0, -4)],
            "5: centre and 4 px diagonals": [(0, 0), (4, 4), (-4, -4), (4, -4), (-4, 4)],
            "9: the 3 x 3 grid of 0/+-3 px": [(a, b) for a in (-3, 0, 3) for b in (-3, 0, 3)]}
    print(f"{args.checkpoint}: 17-label accuracy (%) with the label probabilities averaged over shifted copies")
    print("\n| shifts | val | test |\n|---|---|---|")
    rows = {split: eval_rows(corpus, split, "labelled") for split in ("val", "test")}
    cache: dict[tuple[str, int, int], torch.Tensor] = {}
    for name, offsets in sets.items():
        cells = []
        for split, rs in rows.items():
            mean = torch.stack([cache.setdefault((split, dy, dx), probabilities(rs, dy, dx))
                                for dy, dx in offsets]).mean(0)
            predicted = [base_label(cascade.label_names[i]) for i in mean.argmax(1).tolist()]
            cells.append(100 * np.mean([p == corpus.entries[r].label for p, r in zip(predicted, rs)]))
        print(f"| {name} | {cells[0]:.1f} | {cells[1]:.1f} |")


def findings(args: argparse.Namespace) -> None:

    from pipelines.train.analysis import similar_precision
    from pipelines.train.cnn_train import concept_probabilities
    from pipelines.train.findings import fit_findings_head

    cascade, corpus, probs, embeddings = load(args.checkpoint, args.data)
    search = cascade.search_embedding(embeddings)
    concepts = concept_probabilities(cascade.cnn, embeddings)
    print(f"{args.checkpoint}: the findings head's settings. P@10 of 'same mined label' (and of 'shares the "
          "finding'), abnormal images, whole index, neighbours from other reports, ranked by p_q . p_n")
    print("\n| C | concept weight | val, head fitted on train | test, head fitted on train + val |\n|---|---|---|---|")

    def score(head, split: str) -> str:
        p = head.probabilities(search, concepts)[:, :-1].numpy()          # (N, L), OTHER left out
        r = similar_precision(p, corpus, 10, split, "all", scores=lambda q: p @ p[q])
        return f"{r['precision']:.3f} ({r['shares']:.3f})"

    s, c = search.numpy(), concepts.numpy()
    for c_value in (1.0, 10.0, 100.0, 300.0):
        for weight in (0.0, 0.1, 0.3):
            val = score(fit_findings_head(s, c, corpus.entries, ("train",), c_value, weight), "val")
            test = score(fit_findings_head(s, c, corpus.entries, ("train", "val"), c_value, weight), "test")
            print(f"| {c_value:g} | {weight:g} | {val} | {test} |", flush=True)
    plain = probs.numpy()
    r = similar_precision(plain, corpus, 10, "test", "all", scores=lambda q: plain @ plain[q])
    print(f"\nthe CNN's own 17-label softmax (no OTHER class), same ranking: test {r['precision']:.3f} "
          f"({r['shares']:.3f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("probe", choices=("decoding", "vectors", "shifts", "findings"))
    p.add_argument("--checkpoint", type=Path, default=ROOT / "data" / "models" / "tiny" / "cascade.pt")
    p.add_argument("--data", type=Path, default=ROOT / "data")
    p.add_argument("--beams", type=int, nargs="+", default=[3, 5])
    args = p.parse_args(argv)
    {"decoding": decoding, "vectors": vectors, "shifts": shifts, "findings": findings}[args.probe](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
