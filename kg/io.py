"""Small, dependency-free file helpers: atomic writes, checksums, canonical JSON.

Every artifact grounded writes goes through these, so an interrupted write never
leaves a half-written file where a good one was.

Temporary files and folders are hidden siblings of their target named
``.NAME.PID@HOST.XXXXXXXX.tmp`` (a replaced folder is parked briefly as ``....old``). A
write killed with ``kill -9`` leaves one behind; the next atomic write into the same folder
removes those whose process is gone (and restores a parked ``.old`` folder whose target
is missing), and warns about any it cannot attribute to a dead process on this machine.

Files and folders get the permissions the user's umask gives (``tempfile`` would create
them 0600 / 0700, unreadable by the rest of a team).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OVERWRITE_NOTE = (
    "The new folder is written beside the old one and swapped in with one atomic "
    "rename (Linux); elsewhere the old folder is parked as a hidden .old sibling for a moment, "
    "and a run killed then leaves it there: the next write into the same parent folder puts "
    "it back."
)
"""How replacing a folder works; the ``--overwrite`` help of every command says it."""

_UMASK_LOCK = threading.Lock()
_LEFTOVER = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.[A-Za-z0-9_]+\.(?P<ext>tmp|old)$"
)
# Names written by earlier versions: ``.NAME.XXXXXXXX.tmp`` and ``.NAME.old-PID``.
_LEGACY = re.compile(r"^\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|old-\d+)$")


def dumps_json(obj: Any) -> str:
    """Canonical JSON: ``indent=2, sort_keys=True``, UTF-8 characters kept."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:  # elsewhere: set and restore (another thread may see 0o022 meanwhile)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}@{_host()}."


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # no cheap check: never remove another process's file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep_leftovers(folder: str | Path) -> list[Path]:
    """Clean up what interrupted atomic writes left in ``folder``; returns the paths handled.

    A hidden temporary file or folder of a process that no longer runs on this machine is
    removed; a parked ``.old`` folder is put back when its target is missing (the write
    was killed between its two renames), else removed. Leftovers of another machine, of
    a live process or of an older grounded are only reported (a warning naming them),
    since another writer may still own them.
    """
    folder = Path(folder)
    handled: list[Path] = []
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return handled
    host = _host()
    for entry in sorted(entries):
        match = _LEFTOVER.match(entry.name)
        if match is None:
            if _LEGACY.match(entry.name):
                warnings.warn(
                    f"{entry} looks like the leftover of an interrupted write by an older "
                    "grounded; delete it if no other grounded process is writing to "
                    f"{folder}",
                    stacklevel=3,
                )
                handled.append(entry)
            continue
        pid = int(match["pid"])
        if match["host"] != host or pid == os.getpid() or _pid_alive(pid):
            if match["host"] != host:
                warnings.warn(
                    f"{entry} is the leftover of a write by process {pid} on {match['host']}; "
                    "delete it if that write has ended",
                    stacklevel=3,
                )
                handled.append(entry)
            continue
        target = folder / match["name"]
        if match["ext"] == "old" and not target.exists():
            os.replace(entry, target)
            warnings.warn(
                f"restored {target} from {entry.name}, left by a replacement that was killed "
                "between its two renames",
                stacklevel=3,
            )
        else:
            _remove(entry)
        handled.append(entry)
    return handled


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename.

    The file gets the permissions of the user's umask (``0o666 & ~umask``). Leftovers of
    earlier interrupted writes into the folder are cleaned first (:func:`sweep_leftovers`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
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


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the OS or the file system cannot (the caller then renames twice).
    """
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it into place on success.

    On any error the temporary directory is removed and an existing ``path`` is
    left untouched, so nothing already saved is lost.

    Replacing an existing ``path`` has no window where ``path`` is missing on Linux
    (the two folders are swapped in one atomic step). Where that is not available, the
    old folder is parked as a hidden ``.old`` sibling, the new one renamed into place,
    then the old one deleted: between the two renames ``path`` is absent for a moment,
    and a write killed there leaves the old folder parked, which the next write into
    the same parent folder puts back (:func:`sweep_leftovers`).

    The folder gets the permissions of the user's umask (``0o777 & ~umask``), and so do
    the files written into it: a library that creates files private (safetensors writes
    weights ``0o600``) is brought back to ``0o666 & ~umask`` like every other file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        NotADirectoryError: ``path`` exists and is a file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass `overwrite=True` or choose another folder")
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory; choose another folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent)
    prefix = _temp_prefix(path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
        follow_umask(tmp)
        if not path.exists():
            os.replace(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        else:
            old = path.with_name(f"{prefix}{secrets.token_hex(4)}.old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the old folder back before reporting
                raise
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def follow_umask(folder: str | Path) -> None:
    """Give every file under ``folder`` at least the permissions the umask allows
    (``0o666 & ~umask``; folders ``0o777 & ~umask``), widening files that a library wrote
    private (safetensors: ``0o600``). Executable bits and wider modes are kept."""
    mask = umask()
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode & 0o7777 | (0o777 & ~mask))
        for name in files:
            p = os.path.join(root, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISREG(mode):
                os.chmod(p, mode & 0o7777 | (0o666 & ~mask))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksums(folder: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """sha256 of every file under ``folder`` (or only ``names``), keyed by relative path.

    Without ``names``, files named ``manifest.json`` (at any depth: a nested artifact
    carries its own) are left out.
    """
    folder = Path(folder)
    files = (
        [folder / n for n in names]
        if names is not None
        else sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    )
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}
