"""Refusals before a model folder is handed to transformers: pickled weights and custom code.

transformers would load a ``pytorch_model.bin`` with ``torch.load`` (a pickle can run code)
and, for a folder that names its own code, advise to turn remote code on, which no command
of grounded can do. Both end here in one short message that names the folder and
the fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def refuse_pickled(path: str | Path, what: str = "base") -> None:
    """Raise when ``path`` holds model weights only as pickles (``pytorch_model.bin``...).

    Raises:
        ValueError: naming the files and the fix (convert to safetensors).
    """
    path = Path(path)
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickled:
        raise ValueError(
            f"{what} {path} holds its weights only as pickles ({', '.join(pickled[:3])}); "
            "grounded never loads a pickle (loading one can run code): convert the weights to "
            "safetensors where you trust them (`model.save_pretrained(folder, "
            "safe_serialization=True)`) and pass that folder"
        )


@contextlib.contextmanager
def no_remote_code(path: str | Path, what: str = "base") -> Iterator[None]:
    """Turn transformers' refusal of custom code into one that grounded can act on.

    Raises:
        ValueError: the folder needs code of its own (``auto_map`` or an unknown model type).
    """
    try:
        yield
    except (ValueError, OSError, KeyError) as e:
        if "trust_remote_code" not in str(e) and "does not recognize this architecture" not in str(
            e
        ):
            raise
        raise ValueError(
            f"{what} {path} needs Python code of its own (its config.json names an `auto_map` "
            "or a model type this transformers does not know); grounded never runs code from a "
            "model folder: use a checkpoint of an architecture transformers ships (Llama, "
            "GPT-2, BERT, ...), or upgrade transformers if the type is new"
        ) from None
