"""Where the project keeps its data: one directory, overridable with CXRSEARCH_DATA."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data directory: `override`, else $CXRSEARCH_DATA, else `<project>/data`."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("CXRSEARCH_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return PROJECT_ROOT / "data"
