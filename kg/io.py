"""Small, dependency-free file helpers: atomic writes, checksums, canonical JSON.

Every artifact grounded writes goes through these, so an interrupted write never
leaves a half-written file where a good one was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def dumps_json(obj: Any) -> str:
    """Canonical JSON: ``indent=2, sort_keys=True``, UTF-8 characters kept."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as canonical JSON, atomically."""
    return atomic_write_text(path, dumps_json(obj))


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it into place on success.

    On any error the temporary directory is removed and an existing ``path`` is
    left untouched, so nothing already saved is lost.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass `overwrite=True` or choose another folder")
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory; choose another folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksums(folder: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """sha256 of every file under ``folder`` (or only ``names``), keyed by relative path."""
    folder = Path(folder)
    files = (
        [folder / n for n in names]
        if names is not None
        else sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    )
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def verify_checksums(folder: str | Path, expected: dict[str, str]) -> None:
    """Raise ``ValueError`` naming the first file whose sha256 differs from the manifest."""
    folder = Path(folder)
    for name, digest in sorted(expected.items()):
        p = folder / name
        if not p.exists():
            raise FileNotFoundError(f"{p} is listed in {folder / 'manifest.json'} but missing")
        actual = sha256_file(p)
        if actual != digest:
            raise ValueError(
                f"{p} does not match its checksum in {folder / 'manifest.json'} "
                f"(expected {digest[:12]}…, found {actual[:12]}…); the file was changed or "
                "truncated after saving: rebuild it or restore it from a backup"
            )
