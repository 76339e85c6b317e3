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
"""

from __future__ import annotations

import contextlib
import json
import platform
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kg.io import atomic_write_json

if TYPE_CHECKING:
    from grounded.model.grounding import GroundingModel

GROUNDING_NAME = "grounding.json"
GROUNDING_FORMAT_VERSION = 1
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_GROUNDING_KEYS = {
    "format_version", "kind", "base_model", "kb", "settings", "retrieval", "injection",
    "adapter", "groups", "prompt_format", "versions", "train", "created",
}  # fmt: skip


def load_base(base: str | Path, *, dtype: Any = None) -> tuple[Any, Any]:
    """The tokenizer and causal LM of a local Hugging Face checkpoint (float32 by default).

    A tokenizer without a pad token gets its eos token as pad. Remote code never runs.

    Raises:
        FileNotFoundError: ``base`` is not a folder.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(base)
    if not path.is_dir():
        raise FileNotFoundError(
            f"`base` {str(base)!r} is not a model folder; pass a local Hugging Face checkpoint "
            "(the default one is written by `grounded pretrain --out DIR`)"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype or torch.float32, trust_remote_code=False
    )
    return tokenizer, lm


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
    record = {**record, "format_version": GROUNDING_FORMAT_VERSION, "kind": "grounded-model"}
    return atomic_write_json(Path(directory) / GROUNDING_NAME, record)


def read_grounding(directory: str | Path) -> dict[str, Any]:
    """Read ``grounding.json`` of a trained model folder.

    Raises:
        FileNotFoundError: no ``grounding.json`` (not a model written by ``grounded train``).
        ValueError: no ``format_version`` (or one newer than this grounded reads), or a
            ``kind`` other than ``grounded-model``.
    """
    path = Path(directory) / GROUNDING_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {GROUNDING_NAME}; train a model with `grounded train KB "
            "--base BASE --out MODEL`"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    version = data.get("format_version")
    if version is None:
        raise ValueError(f"{path} has no `format_version`; it was not written by grounded")
    if version > GROUNDING_FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version}; this grounded reads up to "
            f"{GROUNDING_FORMAT_VERSION}: upgrade grounded"
        )
    if data.get("kind") != "grounded-model":
        raise ValueError(
            f"{path} has `kind` {data.get('kind')!r}, not 'grounded-model'; it is not a model "
            "written by `grounded train`"
        )
    unknown = sorted(set(data) - _GROUNDING_KEYS)
    if unknown:
        warnings.warn(f"{path}: unknown keys {unknown} ignored (a newer grounded?)", stacklevel=2)
    return data
