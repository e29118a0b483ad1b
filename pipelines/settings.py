"""Where the data pipeline keeps its files inside the data directory (indexer.settings.data_dir)."""
from __future__ import annotations

from pathlib import Path

from indexer.settings import PROJECT_ROOT, data_dir

__all__ = ["PROJECT_ROOT", "data_dir", "manifest_path", "reports_dir"]


def reports_dir(root: Path) -> Path:
    """Extracted Open-i report XML files live here."""
    return root / "reports" / "ecgen-radiology"


def manifest_path(root: Path) -> Path:
    """The image manifest (image id, report id, split, label, annotation words)."""
    return root / "manifest.jsonl"
