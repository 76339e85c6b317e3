"""Training the model extractor: ``grounded kb train-extractor``.

Examples come from a KB's facts rendered in varied sentences with distractors
(:func:`grounded.extract.data.examples_from_kb`) and from labelled JSONL files
(:func:`grounded.extract.data.read_labelled`). The base (``--base``: ``smollm2``, a .gguf
file or a local HF folder) gets a LoRA adapter (by default on its top 8 layers only, so the
backward pass stops there and a CPU step is cheap) and is trained with
``transformers.Trainer`` on the causal LM loss of the target lines only (the prompt's
tokens are masked with -100).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded.config import to_dict, with_default
from grounded.extract.data import Example, examples_from_kb, read_labelled
from grounded.extract.model import ExtractorModel
from grounded.optim import OptimConfig
from grounded.training.adapters import AdapterConfig

DEFAULT_BASE = "smollm2"


@dataclass
class ExtractorAdapterConfig(AdapterConfig):
    """:class:`~grounded.training.AdapterConfig` with the extractor's defaults: LoRA of rank
    16 on the top 8 layers (copying spans into a fixed format needs little capacity, and a
    step on CPU costs about a third of an all-layer one)."""

    layers: str = with_default(AdapterConfig, "layers", "top8")


@dataclass
class ExtractorOptimConfig(OptimConfig):
    """:class:`~grounded.optim.OptimConfig` with the extractor's defaults (one pass)."""

    learning_rate: float = with_default(OptimConfig, "learning_rate", 5e-4)
    num_train_epochs: float = with_default(OptimConfig, "num_train_epochs", 1.0)
    lr_scheduler_type: str = with_default(OptimConfig, "lr_scheduler_type", "linear")


@dataclass
class ExtractorTrainConfig:
    """Settings of ``grounded kb train-extractor`` and :func:`train_extractor`.

    Example:
        >>> ExtractorTrainConfig(relations="r.json", kb="kb").adapter.layers
        'top8'
    """

    relations: str | None = field(
        default=None,
        metadata={"help": "The relation schema to extract (default: the --kb's relations.json)."},
    )
    kb: str | None = field(
        default=None,
        metadata={
            "help": "A knowledge base folder whose facts are rendered into training sentences "
            "(templates in varied frames, several facts per sentence, distractors)."
        },
    )
    labelled: list[str] = field(
        default_factory=list,
        metadata={
            "help": 'Labelled sentences, JSONL: {"text": ..., "triples": [[head, relation, '
            "tail], ...]}, spans written as in the text; [] for a sentence with none."
        },
    )
    base: str = field(
        default=DEFAULT_BASE,
        metadata={"help": "Base causal LM: smollm2, a .gguf file or a local HF folder."},
    )
    kb_examples: int = field(
        default=2000, metadata={"help": "Sentences rendered from the KB (0: none)."}
    )
    distractor_share: float = field(
        default=0.2, metadata={"help": "Share of KB sentences that state nothing (target none)."}
    )
    multi_share: float = field(
        default=0.3, metadata={"help": "Share of KB fact sentences holding two or three facts."}
    )
    max_length: int = field(
        default=160,
        metadata={"help": "Tokens per example (prompt + target); longer examples are skipped."},
    )
    adapter: ExtractorAdapterConfig = field(
        default_factory=ExtractorAdapterConfig, metadata={"help": "the PEFT adapter"}
    )
    optim: ExtractorOptimConfig = field(
        default_factory=ExtractorOptimConfig, metadata={"help": "the optimiser"}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the data, the adapter and the order."})

    def __post_init__(self) -> None:
        if isinstance(self.labelled, str):
            self.labelled = [self.labelled]
        if self.kb_examples < 0:
            raise ValueError(f"`kb_examples` must be >= 0, got {self.kb_examples}")
        if self.max_length < 16:
            raise ValueError(f"`max_length` must be >= 16, got {self.max_length}")
        for name in ("distractor_share", "multi_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def build_examples(config: ExtractorTrainConfig) -> tuple[list[Example], Any, dict[str, int]]:
    """The training examples a config names, the schema, and counts by origin.

    Raises:
        ValueError: neither ``kb`` nor ``labelled`` is given, or no schema can be found.
        kg.SourceFileError: bad lines in a labelled file.
    """
    from kg import KnowledgeGraph, Schema

    if not config.kb and not config.labelled:
        raise ValueError(
            "nothing to train on: give `--kb KB` (its facts are rendered into sentences), "
            "`--labelled FILE.jsonl` (labelled sentences), or both"
        )
    if config.relations:
        schema = Schema.load(config.relations)
    elif config.kb and (Path(config.kb) / "relations.json").is_file():
        schema = Schema.load(Path(config.kb) / "relations.json")
    else:
        raise ValueError("`relations` is required: the schema file naming the relations to "
                         "extract (or a `--kb` folder holding relations.json)")  # fmt: skip
    examples: list[Example] = []
    counts: Counter[str] = Counter()
    if config.kb and config.kb_examples:
        graph = KnowledgeGraph.load(Path(config.kb) / "graph.json")
        examples += examples_from_kb(
            graph.triples(), schema, max_examples=config.kb_examples,
            distractor_share=config.distractor_share, multi_share=config.multi_share,
            seed=config.seed,
        )  # fmt: skip
    for path in config.labelled:
        rows, dropped = read_labelled(path, schema)
        examples += rows
        counts["labelled_triples_not_spans"] += dropped
    counts.update(e.origin for e in examples)
    return examples, schema, dict(counts)


@dataclass
class ExtractorTrainLog:
    steps: int
    seconds: float
    losses: tuple[float, ...]
    train_loss: float
    examples: int
    skipped_too_long: int


def train_extractor(
    examples: Sequence[Example],
    schema: Any,
    config: ExtractorTrainConfig | None = None,
    *,
    data_counts: dict[str, int] | None = None,
    lm: Any = None,
    tokenizer: Any = None,
    show_progress: bool = True,
) -> tuple[ExtractorModel, ExtractorTrainLog]:
    """LoRA-train a causal LM to write each example's triples (see the module docstring).

    Args:
        examples: the training pairs.
        schema: the :class:`kg.Schema` the triples use.
        config: settings (defaults if None).
        data_counts: counts to record in ``extractor.json`` (from :func:`build_examples`).
        lm, tokenizer: a loaded base to train (tests); default: load ``config.base``.
        show_progress: the Trainer's progress bar.

    Returns:
        The extractor (adapter unmerged, in eval mode: it can be saved) and its log.

    Raises:
        ValueError: no example fits ``config.max_length``.
    """
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer

    from grounded.model.artifacts import versions
    from grounded.training.adapters import get_adapter_model

    config = config or ExtractorTrainConfig()
    base_record: dict[str, Any] = {"spec": config.base}
    if lm is None:
        from grounded.model.artifacts import load_base
        from grounded.model.bases import resolve_base

        resolved = resolve_base(config.base)
        base_record = resolved.record()
        tokenizer, lm = load_base(resolved)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = tokenizer.eos_token_id
    rows, skipped = [], 0
    for e in examples:
        prompt = tokenizer(e.prompt())["input_ids"]
        target = tokenizer(e.target(), add_special_tokens=False)["input_ids"] + [eos]
        if len(prompt) + len(target) > config.max_length:
            skipped += 1
            continue
        ids = prompt + target
        labels = [-100] * len(prompt) + target  # the loss reads the target lines only
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    if not rows:
        raise ValueError(
            f"no example fits `max_length` {config.max_length} tokens ({skipped} skipped); "
            "raise `--max-length`"
        )
    random.Random(config.seed).shuffle(rows)
    torch.manual_seed(config.seed)
    model = get_adapter_model(lm, config.adapter)
    data = Dataset.from_list(rows)
    tokenizer.padding_side = "right"
    with tempfile.TemporaryDirectory(prefix="grounded-extractor-") as tmp:
        args = config.optim.training_arguments(
            tmp, seed=config.seed, use_cpu=not torch.cuda.is_available(),
            disable_tqdm=not show_progress, save_strategy="no", dataloader_pin_memory=False,
            train_sampling_strategy="group_by_length",
        )  # fmt: skip
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=data,
            data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
            processing_class=tokenizer,
        )
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
    model.eval()
    losses = tuple(float(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    log = ExtractorTrainLog(result.global_step, round(seconds, 2), losses,
                            float(result.training_loss), len(rows), skipped)  # fmt: skip
    meta = {
        "base": base_record,
        "settings": config.to_dict(),
        "data": {**(data_counts or {}), "examples": len(rows), "skipped_too_long": skipped},
        "train": {**vars(log), "losses": list(losses), "versions": versions()},
    }
    return ExtractorModel(tokenizer, model, schema, meta), log
