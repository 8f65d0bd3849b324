"""``atomic_write``: the one way dens-calc replaces a file, so a reader never sees it half-written."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, fsync: bool = False, **open_kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success ``os.replace`` it into place.

    The temporary name is unique (``tempfile.mkstemp``), so two processes writing the same
    folder never write into each other's file; the last ``os.replace`` wins whole.  On an
    exception the temporary file is removed and ``path`` keeps its old content.

    Parameters
    ----------
    path
        The file to (re)place; its folder is created if needed.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    fsync
        Flush to disk before the rename (checkpoints: survive a power cut, at some cost per write).
    open_kwargs
        Passed to ``open`` (e.g. ``newline=""`` for ``csv``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` by ``text`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)
