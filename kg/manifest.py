"""One versioned, checksummed manifest for every artifact folder grounded writes.

Each artifact (knowledge base, index, base model, trained model, fact-checker) is a folder
holding a ``manifest.json``, written last, after every other file::

    {
      "kind": "grounded-kb",            what the folder is
      "format_version": 2,              the layout's version (an integer)
      "versions": {"python": ..., "grounded": ..., ...},
      "created": "2025-01-01T00:00:00Z",
      "checksums": {"graph.json": "<sha256>", "index/index.faiss": "<sha256>", ...},
      ...                               keys of the artifact's own
    }

:func:`write_manifest` writes it; :func:`read_manifest` checks its form and every file's
sha256 (:func:`verify_checksums`). :func:`check_record` is the same version/kind check for
any other versioned JSON record (``grounding.json``, ``factcheck.json``, ...), and
:func:`read_json` reads a JSON object with errors that name the file.

Every problem raises :class:`ArtifactError` (a ``ValueError``; a missing file also an
``FileNotFoundError``) whose message names the file and the fix. No key of a manifest can
switch its own checks off: a missing ``checksums`` key is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
import re
import time
import warnings
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kg.io import atomic_write_json, checksums, sha256_file

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_KEYS = frozenset({"kind", "format_version", "versions", "created", "checksums"})
"""The keys :func:`write_manifest` writes for every kind."""
DEFAULT_FIX = "rebuild the artifact, or restore the folder from a backup"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(ValueError):
    """An artifact file is damaged, of another kind or from a newer grounded.

    The message names the file and the fix.
    """


class ArtifactMissingError(ArtifactError, FileNotFoundError):
    """An artifact file (or the manifest itself) is missing."""


def package_versions(dists: Iterable[str] = ()) -> dict[str, str]:
    """Python's version and those of ``grounded`` and ``dists`` that are installed."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("grounded", *dists):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def read_json(path: str | Path, *, fix: str = DEFAULT_FIX) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        ArtifactMissingError: ``path`` does not exist.
        ArtifactError: ``path`` is a folder, is not UTF-8 JSON (truncated, damaged), or holds
            something other than an object (a list, a number).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
        >>> _ = p.write_text("[1, 2]")
        >>> read_json(p)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        kg.manifest.ArtifactError: .../x.json holds a JSON list, expected an object {...}; ...
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactMissingError(f"{path} is missing; {fix}")
    if path.is_dir():
        raise ArtifactError(f"{path} is a folder, expected a JSON file; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ArtifactError(
            f"{path}: not UTF-8 text (byte {err.start}); the file is damaged: {fix}"
        ) from None
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); the file is "
            f"truncated or damaged: {fix}"
        ) from None
    if not isinstance(data, dict):
        raise ArtifactError(
            f"{path} holds a JSON {_json_type(data)}, expected an object {{...}}; the file is "
            f"damaged: {fix}"
        )
    return data


def check_record(
    data: Mapping[str, Any],
    origin: str | Path,
    *,
    version: int,
    kind: str | Collection[str] | None = None,
    required: Iterable[str] = (),
    known: Collection[str] | None = None,
    kind_since: int = 1,
    fix: str = DEFAULT_FIX,
) -> None:
    """Check the ``format_version`` and ``kind`` of a versioned JSON record.

    Args:
        data: the record (a manifest, ``grounding.json``, ...).
        origin: the file it came from, for messages.
        version: the newest ``format_version`` this code reads.
        kind: the ``kind`` the record must have (or one of several); None: not checked.
        required: keys that must be present.
        known: every key this code knows; others warn (written by a newer grounded?).
            None: no check.
        kind_since: the first ``format_version`` that records ``kind``; older records
            are accepted without one.
        fix: what the user should do when the record is damaged.

    Raises:
        ArtifactError: no ``format_version``, one that is not an integer or is newer than
            ``version``; a missing or different ``kind``; a missing required key.
    """
    found = data.get("format_version")
    if found is None:
        raise ArtifactError(
            f"{origin} has no `format_version`; it was not written by grounded, or is "
            f"damaged: {fix}"
        )
    if type(found) is not int:
        raise ArtifactError(
            f"{origin}: `format_version` is {found!r} (a {_json_type(found)}), expected an "
            f"integer such as {version}; the file is damaged: {fix}"
        )
    if found < 1:
        raise ArtifactError(f"{origin}: `format_version` is {found}, expected >= 1: {fix}")
    if found > version:
        raise ArtifactError(
            f"{origin} has `format_version` {found}, newer than this grounded reads "
            f"({version}): upgrade grounded"
        )
    if kind is not None:
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        want = " or ".join(repr(k) for k in kinds)
        found_kind = data.get("kind")
        if found_kind is None and found >= kind_since:
            raise ArtifactError(f"{origin} has no `kind` (expected {want}); {fix}")
        if found_kind is not None and found_kind not in kinds:
            raise ArtifactError(
                f"{origin} describes a {found_kind!r} artifact, not {want}; point the "
                "argument at the right folder"
            )
    missing = [k for k in required if k not in data]
    if missing:
        raise ArtifactError(
            f"{origin} lacks {', '.join(f'`{k}`' for k in missing)}; the file is damaged: {fix}"
        )
    if known is not None:
        unknown = sorted(set(data) - set(known))
        if unknown:
            warnings.warn(
                f"{origin} has keys this grounded does not know ({', '.join(unknown)}); they "
                "are ignored. Upgrade grounded if a newer version wrote the file.",
                stacklevel=3,
            )


def write_manifest(
    folder: str | Path,
    kind: str,
    version: int,
    *,
    files: Iterable[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    packages: Iterable[str] = (),
    versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write ``folder/manifest.json`` (canonical JSON, atomically) and return it.

    Call it last, once every other file of the artifact is written.

    Args:
        folder: the artifact folder.
        kind: what the folder is, e.g. ``"grounded-kb"``.
        version: the layout's ``format_version``.
        files: the files to checksum, relative to ``folder``; None: every file under it
            except files named ``manifest.json`` (a nested artifact carries its own).
        extra: the artifact's own keys; they cannot replace the common ones.
        packages: distributions whose versions to record besides Python and grounded.
        versions: more versions to record, as ``{name: version}`` (e.g. read from a module
            whose distribution name varies, like faiss).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data.txt").write_text("hello")
        >>> m = write_manifest(folder, "demo", 1)
        >>> read_manifest(folder, "demo", 1)["checksums"] == m["checksums"]
        True
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; write the artifact's files first")
    sums = checksums(folder, None if files is None else sorted(files))
    manifest = {
        **(extra or {}),
        "kind": kind,
        "format_version": int(version),
        "versions": {**package_versions(packages), **(versions or {})},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checksums": sums,
    }
    atomic_write_json(folder / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(
    folder: str | Path,
    kind: str | Collection[str] | None,
    version: int,
    *,
    verify: bool = True,
    required: Iterable[str] = (),
    known: Collection[str] | None = None,
    kind_since: int = 1,
    fix: str = DEFAULT_FIX,
) -> dict[str, Any]:
    """Read and check ``folder/manifest.json``; with ``verify``, check every listed file.

    Args:
        folder: the artifact folder.
        kind, version, required, known, kind_since, fix: see :func:`check_record`
            (``known`` is added to the common keys).
        verify: compare every listed file's sha256 with the manifest.

    Raises:
        ArtifactMissingError: ``folder`` or its manifest is missing, or a listed file is.
        ArtifactError: the manifest is truncated or not JSON, not an object, has a bad or
            newer ``format_version``, another ``kind``, no ``checksums`` (or damaged ones),
            or a file does not match its checksum.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "missing"
        raise ArtifactMissingError(f"{folder} is {what}; {fix}")
    mpath = folder / MANIFEST_NAME
    if not mpath.exists():
        raise ArtifactMissingError(
            f"{folder} has no {MANIFEST_NAME}, so its files cannot be verified; {fix}"
        )
    data = read_json(mpath, fix=fix)
    check_record(
        data,
        mpath,
        version=version,
        kind=kind,
        required=("checksums", *required),
        known=None if known is None else {*MANIFEST_KEYS, *known},
        kind_since=kind_since,
        fix=fix,
    )
    sums = data["checksums"]
    if not isinstance(sums, dict) or not sums:
        raise ArtifactError(
            f"{mpath}: `checksums` must map each file to its sha256, got "
            f"{_json_type(sums)} {str(sums)[:60]}; the manifest is damaged: {fix}"
        )
    for name, digest in sums.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ArtifactError(
                f"{mpath}: the checksum of {name!r} is {digest!r}, not a sha256 hex digest; "
                f"the manifest is damaged: {fix}"
            )
    if verify:
        verify_checksums(folder, sums, fix=fix)
    return data


def verify_checksums(
    folder: str | Path, expected: Mapping[str, str], *, fix: str = DEFAULT_FIX
) -> None:
    """Check each file named in ``expected`` (relative to ``folder``) against its sha256.

    Raises:
        ArtifactMissingError: a listed file is missing.
        ArtifactError: a file's sha256 differs (changed, truncated, bit flip), or a name
            points outside ``folder``.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST_NAME
    for name, digest in sorted(expected.items()):
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ArtifactError(f"{mpath} lists {name!r}, a path outside {folder}: {fix}")
        p = folder / rel
        if not p.is_file():
            raise ArtifactMissingError(f"{p} is listed in {mpath} but missing; {fix}")
        actual = sha256_file(p)
        if actual != digest:
            raise ArtifactError(
                f"{p} does not match its checksum in {mpath} (expected {digest[:12]}…, found "
                f"{actual[:12]}…); the file was changed or damaged after saving: {fix}"
            )


def verify_if_ours(
    folder: str | Path,
    kind: str | Collection[str] | None,
    version: int,
    *,
    markers: Iterable[str] = (),
    known: Collection[str] = (),
    fix: str = DEFAULT_FIX,
) -> dict[str, Any] | None:
    """Verify ``folder`` when grounded wrote it; None for a folder from elsewhere.

    A folder is grounded's when it holds ``manifest.json`` or one of ``markers`` (files
    only grounded writes, such as ``factcheck.json``): its manifest is then required and
    checked (:func:`read_manifest`). Any other folder, such as a Hugging Face checkpoint
    downloaded by the user, carries no checksums to verify; that is logged at debug level.
    ``known``: the artifact's own manifest keys (others warn, see :func:`check_record`).

    Raises:
        ArtifactError: see :func:`read_manifest`.
    """
    folder = Path(folder)
    if (folder / MANIFEST_NAME).exists() or any((folder / m).exists() for m in markers):
        return read_manifest(folder, kind, version, known=known, fix=fix)
    logger.debug(
        "%s has no %s: not written by grounded, so its files are not verified",
        folder,
        MANIFEST_NAME,
    )
    return None


def digest(sums: Mapping[str, str]) -> str:
    """One sha256 over a ``{file: sha256}`` mapping: names one exact set of files.

    Example:
        >>> digest({"a.txt": "0" * 64}) == digest({"a.txt": "0" * 64})
        True
    """
    h = hashlib.sha256()
    for name in sorted(sums):
        h.update(f"{name}\t{sums[name]}\n".encode())
    return h.hexdigest()


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
