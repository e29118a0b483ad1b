"""Seeded train/val/test split by report (all images of a report in one split), stratified by label."""
from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from indexer.records import Report

SPLITS = ("train", "val", "test")


def split_reports(reports: Sequence[Report], labels: dict[str, str | None], seed: int = 0,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), min_eval_images: int = 10) -> dict[str, str]:
    """Assign every report to 'train', 'val' or 'test'.

    Reports are grouped by label (None = no mined label, its own group) and each group is split on
    its own: val and test each get at least `fractions` of the group's images and, where the group
    allows it, at least `min_eval_images` images, while train keeps the largest share. The order
    within a group is a seeded shuffle, so the split is reproducible.

    Args:
        reports: the reports (only their ids and image counts are used).
        labels: report id -> label or None.
    Returns:
        report id -> split name.
    """
    groups: dict[str | None, list[Report]] = defaultdict(list)
    for report in sorted(reports, key=lambda r: r.report_id):
        groups[labels.get(report.report_id)].append(report)
    assignment: dict[str, str] = {}
    for label in sorted(groups, key=lambda x: (x is None, x or "")):
        group = groups[label]
        rng = random.Random(f"{seed}:{label}")
        rng.shuffle(group)
        n_images = sum(len(r.image_ids) for r in group)
        # at least the fraction, at least `min_eval_images` for a label, never more than a third of the group
        wanted = max(round(fractions[1] * n_images), min_eval_images if label is not None else 0)
        eval_target = min(wanted, n_images // 3)
        taken = {"val": 0, "test": 0}
        for report in group:
            n = len(report.image_ids)
            for split in ("test", "val"):
                if taken[split] < eval_target:
                    assignment[report.report_id] = split
                    taken[split] += n
                    break
            else:
                assignment[report.report_id] = "train"
    return assignment
