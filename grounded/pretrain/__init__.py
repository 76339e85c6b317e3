"""``grounded pretrain``: the embedded default base model.

A byte-level BPE tokenizer and a small Llama trained from scratch on the facts of a seeded
"known" half of a knowledge base's subjects; the other subjects stay unknown to the model,
and the split is saved beside the checkpoint (``grounded_pretrain.json``).

Importing this package is cheap: torch and transformers load inside the functions.

Example:
    >>> from grounded.pretrain import PretrainConfig, load_pretrain_split, pretrain
    >>> result = pretrain("runs/countries/kb", "runs/countries/base")  # doctest: +SKIP
    >>> load_pretrain_split("runs/countries/base").group("Mongolia")  # doctest: +SKIP
    'known'
"""

from grounded.pretrain.config import PRESETS, PretrainConfig, PretrainOptimConfig
from grounded.pretrain.corpus import (
    build_corpus,
    question_templates,
    subject_documents,
    tokenizer_texts,
)
from grounded.pretrain.model import build_model, llama_config, pack_documents
from grounded.pretrain.probe import (
    greedy_answers,
    greedy_completions,
    probe_exact_match,
    probe_questions,
)
from grounded.pretrain.split import (
    PRETRAIN_FILE,
    EntityGroup,
    PretrainSplit,
    load_pretrain_split,
    split_subjects,
)
from grounded.pretrain.tokenizer import train_tokenizer
from grounded.pretrain.train import PretrainResult, checkpoints_dir, pretrain

__all__ = [
    "PRESETS",
    "PRETRAIN_FILE",
    "EntityGroup",
    "PretrainConfig",
    "PretrainOptimConfig",
    "PretrainResult",
    "PretrainSplit",
    "build_corpus",
    "build_model",
    "checkpoints_dir",
    "greedy_answers",
    "greedy_completions",
    "llama_config",
    "load_pretrain_split",
    "pack_documents",
    "pretrain",
    "probe_exact_match",
    "probe_questions",
    "question_templates",
    "split_subjects",
    "subject_documents",
    "tokenizer_texts",
    "train_tokenizer",
]
