"""The architecture holds: the import direction between the four packages, and a light text-only search."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """setup.cfg's import-linter contracts: models alone; indexer below pipelines and search_web; web not pipelines."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


def test_a_text_only_search_loads_neither_faiss_nor_torch(tmp_path):
    """`cxrsearch search` (without --vectors, and with --source report) must stay light: no FAISS, no torch."""
    from indexer.documents import build_document
    from indexer.text.embedded import EmbeddedTextBackend
    from indexer.vocabulary import Vocabulary
    from tests.indexer.conftest import make_inputs

    with EmbeddedTextBackend(tmp_path / "index" / "text") as backend:
        backend.index([build_document(i, Vocabulary.load()) for i in make_inputs()])
    code = (
        "import sys, json\n"
        "from pipelines.cli import main\n"
        f"rc1 = main(['search', 'granuloma', '--index-dir', {str(tmp_path / 'index')!r}, '--json'])\n"
        f"rc2 = main(['search', 'granuloma', '--index-dir', {str(tmp_path / 'index')!r}, '--source', 'report'])\n"
        "print(json.dumps({'rc': [rc1, rc2], 'faiss': 'faiss' in sys.modules, 'torch': 'torch' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last == {"rc": [0, 0], "faiss": False, "torch": False}
