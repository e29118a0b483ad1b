"""Small file-system helpers shared by every writer: atomic, durable replacement of a file."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable; a no-op where directories cannot be opened or synced."""
    try:
        fd = os.open(Path(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Write a file aside, then put it in place in one step: readers see the old file or the new, never half.

        with atomic_path(path) as tmp:
            faiss.write_index(index, str(tmp))     # any writer that takes a path

    On success the temporary file is fsynced (when `durable`), renamed over `target` and the folder
    fsynced; on an exception it is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if durable:
            fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(target: str | os.PathLike, data: str | bytes, durable: bool = True, encoding: str = "utf-8") -> Path:
    """Replace `target` with `data` (text or bytes) atomically (see atomic_path); returns the path."""
    with atomic_path(target, durable) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding=encoding)
    return Path(target)
