"""The trained-model folder: PEFT adapter + injection layer + ``grounding.json``.

Layout of ``MODEL/``::

    MODEL/
      adapter_config.json  adapter_model.safetensors   PeftModel.from_pretrained(base, MODEL)
      injection.json  injection.safetensors             KnowledgeInjection.from_pretrained(MODEL)
      grounding.json      base model, KB (path, name, checksum), every setting, versions
      groups.json         the entity groups (seen / known / unknown / out_of_kb)
      examples.jsonl      the training examples (prompts, targets, negatives)
      log_history.json    the Trainer's log (loss terms per logging step)
      feedback.jsonl  dpo_pairs.jsonl                   feedback rounds and preference pairs
      manifest.json       kind, versions, sha256 of every file above (kg.manifest), written
                          last and checked on load

A base model written by ``grounded pretrain`` carries a ``manifest.json`` too (kind
``grounded-base-model``); any other Hugging Face checkpoint (a user's own) loads without one.
Loading never runs code from a folder (``trust_remote_code=False`` everywhere), and refuses
weights that are not finite and tokenizers that read every word as unknown.
"""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kg.io import atomic_write_json
from kg.manifest import (
    ArtifactError,
    ArtifactMissingError,
    check_record,
    read_json,
    read_manifest,
    verify_if_ours,
    write_manifest,
)

if TYPE_CHECKING:
    from grounded.model.bases import ResolvedBase
    from grounded.model.grounding import GroundingModel

GROUNDING_NAME = "grounding.json"
GROUNDING_FORMAT_VERSION = 1
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MODEL_KIND = "grounded-model"
MODEL_FORMAT_VERSION = 1
"""Version of a trained model folder's ``manifest.json``."""
BASE_KIND = "grounded-base-model"
BASE_FORMAT_VERSION = 1
"""Version of the ``manifest.json`` of a base model written by ``grounded pretrain``."""
BASE_MARKERS = ("grounded_pretrain.json",)
"""Files only ``grounded pretrain`` writes: a base folder holding one must have a manifest."""
MODEL_FIX = (
    "train the model again (`grounded train KB --base BASE --out MODEL --overwrite`), or "
    "restore the folder from a backup"
)
BASE_FIX = (
    "pretrain it again (`grounded pretrain KB --out BASE --overwrite`), or restore the "
    "folder from a backup"
)
_PACKAGES = ("torch", "transformers", "peft", "tokenizers", "safetensors")
_PROBE = "the of and a b c 1 2"
_GROUNDING_KEYS = {
    "format_version", "kind", "base_model", "kb", "settings", "retrieval", "injection",
    "adapter", "groups", "prompt_format", "versions", "train", "created", "base",
}  # fmt: skip


def load_base(
    base: str | Path | ResolvedBase, *, dtype: Any = None, cache_dir: str | Path | None = None
) -> tuple[Any, Any]:
    """The tokenizer and causal LM of a base model (float32 by default).

    Args:
        base: a local Hugging Face checkpoint folder, a ``.gguf`` file (or a folder holding
            one), a name such as ``smollm2``, or a :class:`~grounded.model.bases.ResolvedBase`
            (see :func:`~grounded.model.bases.resolve_base`: a GGUF source is converted once
            into a cached checkpoint folder, which is what loads).
        dtype: the weights' torch dtype (default float32).
        cache_dir: where converted GGUF bases live (default: ``$GROUNDED_CACHE/bases``,
            else ``~/.cache/grounded/bases``).

    A tokenizer without a pad token gets its eos token as pad. Remote code never runs: a
    folder whose config names its own code (``auto_map``) loads with the library's classes
    or fails. A base written by ``grounded pretrain`` or converted from GGUF is checked
    against its manifest first.

    Raises:
        FileNotFoundError: ``base`` is not a folder, a .gguf file or a known name (or a named
            base is not installed), or a file its manifest lists is missing.
        ValueError: a file differs from its checksum, the tokenizer reads every word as
            unknown (its vocabulary file is missing), or a weight is NaN or infinite.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grounded.model.bases import (
        CONVERSION_VERSION,
        CONVERTED_KEYS,
        CONVERTED_KIND,
        resolve_base,
    )

    resolved = resolve_base(base, cache_dir=cache_dir)
    path = resolved.folder
    if not resolved.verified:
        verify_if_ours(
            path, (BASE_KIND, CONVERTED_KIND), max(BASE_FORMAT_VERSION, CONVERSION_VERSION),
            markers=BASE_MARKERS, known=CONVERTED_KEYS, fix=BASE_FIX,
        )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    check_tokenizer(tokenizer, path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype or torch.float32, trust_remote_code=False
    )
    return tokenizer, lm


def write_base_manifest(folder: str | Path) -> dict[str, Any]:
    """Seal a base model folder written by ``grounded pretrain``: its ``manifest.json``."""
    return write_manifest(folder, BASE_KIND, BASE_FORMAT_VERSION, packages=_PACKAGES)


def check_tokenizer(tokenizer: Any, folder: str | Path) -> None:
    """Refuse a tokenizer that cannot read text: only special tokens, or every word unknown.

    transformers builds such a tokenizer, silently, when a folder's vocabulary file
    (``tokenizer.json``, ``vocab.txt``, ...) is missing.

    Raises:
        ValueError: naming ``folder``.
    """
    special = set(tokenizer.all_special_ids)
    ids = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    if len(tokenizer) <= len(special) or not ids or all(i == unk for i in ids):
        raise ArtifactError(
            f"the tokenizer in {folder} cannot read text ({len(tokenizer)} tokens, "
            f"{len(special)} of them special; {_PROBE!r} becomes {len(ids)} unknown tokens): "
            "its vocabulary file (tokenizer.json, vocab.txt, ...) is missing or damaged; "
            "restore it, or save the tokenizer again with `tokenizer.save_pretrained(folder)`"
        )


def check_finite(tensors: Any, origin: str | Path) -> None:
    """Refuse weights holding NaN or infinite values.

    Args:
        tensors: ``{name: tensor}`` (a state dict, or a safetensors file's content).
        origin: the file or folder, for the message.

    Raises:
        ValueError: naming ``origin`` and the first bad tensor.
    """
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ArtifactError(
                f"{origin}: weight {name!r} holds {bad} NaN or infinite values of "
                f"{tensor.numel()}; the weights are damaged (or training diverged): restore "
                "them from a backup or train again"
            )


def check_weight_file(path: str | Path) -> None:
    """Read a safetensors file and refuse NaN or infinite weights (see :func:`check_finite`).

    Raises:
        ValueError: the file is not a readable safetensors file, or holds a bad weight.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(
            f"{path} is not a readable safetensors file ({err}); restore it from a backup "
            "or train again"
        ) from None
    check_finite(tensors, path)


def write_model_manifest(directory: str | Path) -> dict[str, Any]:
    """Seal a trained model folder: its ``manifest.json``, written after every other file."""
    return write_manifest(directory, MODEL_KIND, MODEL_FORMAT_VERSION, packages=_PACKAGES)


def open_model_folder(directory: str | Path) -> dict[str, Any]:
    """Check a trained model folder and return its ``grounding.json``.

    Checks, in order: the manifest and every file's sha256, ``grounding.json``, and that
    the adapter and injection weights are finite.

    Raises:
        FileNotFoundError: the folder, its manifest or a listed file is missing.
        ValueError: a file differs from its checksum, a JSON file is damaged or newer, a
            weight is NaN or infinite.
    """
    from grounded.injection.layer import WEIGHTS_NAME

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory} is not a model folder; train one with `grounded train KB --base "
            "BASE --out MODEL`"
        )
    if not (directory / GROUNDING_NAME).exists() and not (directory / "manifest.json").exists():
        raise ArtifactMissingError(
            f"{directory} has no {GROUNDING_NAME}: it is not a model folder; train a model "
            "with `grounded train KB --base BASE --out MODEL`"
        )
    read_manifest(directory, MODEL_KIND, MODEL_FORMAT_VERSION, known=(), fix=MODEL_FIX)
    grounding = read_grounding(directory)
    for name in (ADAPTER_WEIGHTS, WEIGHTS_NAME):
        if (directory / name).is_file():
            check_weight_file(directory / name)
    return grounding


def load_pretrain_split(base: str | Path) -> Any:
    """The base model's pretrain split (known / unknown subjects), or None.

    None when ``grounded.pretrain`` is not installed or ``base`` is an arbitrary Hugging Face
    checkpoint without ``grounded_pretrain.json``: every subject is then ``unknown``.
    """
    try:
        from grounded.pretrain import load_pretrain_split as _load
    except ImportError:
        return None
    return _load(base)


def save_weights(model: GroundingModel, directory: str | Path) -> Path:
    """Write the adapter (``save_pretrained``) and the injection layer to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.lm.save_pretrained(str(directory))
    model.injection.save_pretrained(directory)
    return directory


def load_weights(model: GroundingModel, directory: str | Path) -> None:
    """Load adapter and injection weights written by :func:`save_weights` into ``model``.

    Raises:
        FileNotFoundError: the adapter weights are missing.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from grounded.injection.layer import WEIGHTS_NAME

    directory = Path(directory)
    adapter = directory / ADAPTER_WEIGHTS
    if not adapter.is_file():
        raise FileNotFoundError(f"{adapter} is missing; {directory} is not a grounded checkpoint")
    set_peft_model_state_dict(model.lm, load_file(str(adapter)))
    weights = directory / WEIGHTS_NAME
    if weights.is_file():
        model.injection.load_state_dict(load_file(str(weights)))


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a trained model depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("grounded", "torch", "transformers", "peft", "accelerate", "datasets"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def write_grounding(directory: str | Path, record: dict[str, Any]) -> Path:
    """Write ``grounding.json`` (canonical JSON) with the format version and kind."""
    record = {**record, "format_version": GROUNDING_FORMAT_VERSION, "kind": MODEL_KIND}
    return atomic_write_json(Path(directory) / GROUNDING_NAME, record)


def read_grounding(directory: str | Path) -> dict[str, Any]:
    """Read ``grounding.json`` of a trained model folder (see :func:`open_model_folder`,
    which also verifies the folder's files).

    Raises:
        FileNotFoundError: no ``grounding.json`` (not a model written by ``grounded train``).
        ValueError: the file is not a JSON object, has no ``format_version`` (or one newer
            than this grounded reads), or a ``kind`` other than ``grounded-model``.
    """
    path = Path(directory) / GROUNDING_NAME
    if not path.is_file():
        raise ArtifactMissingError(
            f"{directory} has no {GROUNDING_NAME}; train a model with `grounded train KB "
            "--base BASE --out MODEL`"
        )
    data = read_json(path, fix=MODEL_FIX)
    check_record(
        data,
        path,
        version=GROUNDING_FORMAT_VERSION,
        kind=MODEL_KIND,
        known=_GROUNDING_KEYS,
        fix=MODEL_FIX,
    )
    return data
