"""`pretrain`: train the embedded base model on the known subjects' facts of a knowledge base.

The run, in order: split the subjects (seeded), build the corpus of the known ones, train
a byte-level BPE tokenizer on every entity name and template, pack the tokenized corpus
into blocks, train a small Llama with the Hugging Face ``Trainer`` (checkpoints every
``save_steps`` in ``OUT.checkpoints/``, so ``resume=True`` continues an interrupted run),
then write ``OUT/`` in one move: ``config.json``, ``model.safetensors``, the tokenizer,
``grounded_pretrain.json`` and ``manifest.json`` (the sha256 of every file, checked when
the base is loaded).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.model.artifacts import write_base_manifest
from grounded.pretrain.config import PretrainConfig
from grounded.pretrain.corpus import (
    abstention_documents,
    build_corpus,
    tokenizer_texts,
)
from grounded.pretrain.model import build_model, pack_documents
from grounded.pretrain.split import PretrainSplit, split_subjects
from grounded.pretrain.tokenizer import train_tokenizer
from kg import KnowledgeGraph
from kg.io import atomic_directory, atomic_write_json
from kg.manifest import check_destination, refuse_inputs_inside

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainingArguments

    from grounded.kb import KnowledgeBase

RUN_FILE = "run.json"  # in the checkpoints folder: what a resumed run must match
TOKENIZER_DIR = "tokenizer"  # in the checkpoints folder: the run's tokenizer, trained once


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`pretrain` wrote.

    Attributes:
        path: the base model folder (a Hugging Face checkpoint).
        split: the contents of its ``grounded_pretrain.json``.
        seconds: wall time of the whole run.
        checkpoints: the resumable checkpoints folder when it was kept, else None.
        model, tokenizer: the trained model and its tokenizer, as saved (in memory).
    """

    path: Path
    split: PretrainSplit
    seconds: float
    checkpoints: Path | None = None
    model: PreTrainedModel | None = field(default=None, repr=False, compare=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False, compare=False)

    @property
    def train(self) -> dict[str, Any]:
        """Training figures: steps, losses, tokens, seconds, corpus and model sizes."""
        return self.split.train


def checkpoints_dir(out: str | Path) -> Path:
    """Where a run writing ``out`` keeps its resumable checkpoints: ``OUT.checkpoints``.

    A sibling, not a subfolder: ``out`` appears only when the model is complete, so an
    interrupted run never leaves a half-written ``out``.
    """
    out = Path(out)
    return out.with_name(out.name + ".checkpoints")


def pretrain(
    kb: KnowledgeBase | str | Path,
    out: str | Path,
    config: PretrainConfig | None = None,
    *,
    show_progress: bool = True,
) -> PretrainResult:
    """Train the base model of ``kb`` and save it as a Hugging Face checkpoint at ``out``.

    Args:
        kb: a :class:`grounded.kb.KnowledgeBase` or its folder.
        out: the folder to write; it appears only once the model is complete.
        config: the settings (default :class:`PretrainConfig`).
        show_progress: show a progress bar with the running loss.

    Returns:
        A :class:`PretrainResult`; ``AutoModelForCausalLM.from_pretrained(out)`` and
        ``AutoTokenizer.from_pretrained(out)`` load the model, and
        :func:`grounded.pretrain.load_pretrain_split` reads the known/unknown split.

    Raises:
        FileExistsError: ``out`` exists, or an earlier run left checkpoints, and neither
            ``overwrite`` nor (for checkpoints) ``resume`` is set.
        ValueError: ``resume`` is set but the checkpoints were made with other settings or
            another knowledge base.

    Example:
        >>> result = pretrain("runs/countries/kb", "runs/countries/base")  # doctest: +SKIP
        >>> result.split.group("Mongolia")  # doctest: +SKIP
        'known'
    """
    import torch
    from transformers import Trainer, default_data_collator
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint

    from grounded.pretrain.callbacks import ProgressWithLoss, Recorder

    t0 = time.perf_counter()
    config = config or PretrainConfig()
    out = Path(out)
    ckpt = checkpoints_dir(out)
    last = get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None
    kb_path = getattr(kb, "path", None) if not isinstance(kb, (str, Path)) else kb
    _check_destination(out, ckpt, last, config, {"knowledge base": kb_path})
    graph, kb_name, kb_checksum = _open_kb(kb)

    known, unknown = split_subjects(graph, config.known_fraction, config.seed)
    docs, passes = training_corpus(graph, known, config)
    run_info = {
        "kb": {"name": kb_name, "checksum": kb_checksum},
        "settings": config.model_settings(),
    }
    tokenizer = _run_tokenizer(graph, config, ckpt, resuming=last is not None, run_info=run_info)
    eos = tokenizer.eos_token_id
    token_ids = [[*ids, eos] for ids in tokenizer(docs)["input_ids"]]
    blocks = pack_documents(token_ids, config.block_size, tokenizer.pad_token_id)
    dataset = [{k: torch.tensor(v) for k, v in b.items()} for b in blocks]
    model = build_model(config, tokenizer)

    args = training_arguments(config, ckpt, passes=passes)
    recorder = Recorder()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=default_data_collator,
        processing_class=tokenizer,
        callbacks=[recorder],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if show_progress:
        trainer.add_callback(ProgressWithLoss())
    t_train = time.perf_counter()
    # "Writing model shards" bars of checkpoint saves would break the training bar.
    with _hf_progress_bars_off(), _torch_threads(config.num_threads):
        output = trainer.train(resume_from_checkpoint=last if config.resume else None)
    train_seconds = time.perf_counter() - t_train

    state = trainer.state
    tokens = int(state.num_input_tokens_seen) - recorder.tokens_at_start
    train_stats = {
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0.0), 4),
        "resumed_from_step": recorder.step_at_start if recorder.step_at_start else None,
        "first_loss": recorder.losses[0][1] if recorder.losses else None,
        "final_loss": recorder.losses[-1][1] if recorder.losses else None,
        "mean_loss": round(float(output.training_loss), 6),
        "tokens": tokens,
        "seconds": round(train_seconds, 3),
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        "num_parameters": model.num_parameters(),
        "vocab_size": len(tokenizer),
        "corpus_documents": len(docs),
        "corpus_tokens": sum(len(ids) for ids in token_ids),
        "blocks": len(blocks),
        "device": str(args.device),
    }
    split = PretrainSplit(
        known_subjects=tuple(known),
        unknown_subjects=tuple(unknown),
        seed=config.seed,
        kb_name=kb_name,
        kb_checksum=kb_checksum,
        settings=config.to_dict(),
        train=train_stats,
    )
    model.config.use_cache = True  # the Trainer turns the KV cache off for training
    with _hf_progress_bars_off(), atomic_directory(out, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        split.save(tmp)
        write_base_manifest(tmp)  # last: the sha256 of every file above
    kept = ckpt if config.keep_checkpoints else None
    if kept is None:
        shutil.rmtree(ckpt, ignore_errors=True)
    return PretrainResult(out, split, time.perf_counter() - t0, kept, model, tokenizer)


def training_corpus(
    graph: KnowledgeGraph, known: list[str], config: PretrainConfig
) -> tuple[list[str], int]:
    """The training documents, and how many passes over the facts they already hold (one:
    the Trainer makes ``num_train_epochs`` epochs over them)."""
    docs = build_corpus(graph, known, seed=config.seed)
    if config.abstention_docs:
        docs += abstention_documents(graph, config.abstention_docs, seed=config.seed)
        random.Random(config.seed).shuffle(docs)
    return docs, 1


def training_arguments(
    config: PretrainConfig, output_dir: str | Path, *, passes: int = 1
) -> TrainingArguments:
    """The ``TrainingArguments`` of ``config``, writing checkpoints to ``output_dir``.

    ``passes``: passes over the facts the corpus already holds (see :func:`training_corpus`).
    """
    import torch

    return config.optim.training_arguments(
        output_dir,
        seed=config.seed,
        num_train_epochs=config.optim.num_train_epochs / passes,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,  # the newest survives a crash while the next one is written
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,  # ProgressWithLoss shows the loss on the bar instead of printing logs
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def _run_tokenizer(
    graph: KnowledgeGraph,
    config: PretrainConfig,
    ckpt: Path,
    *,
    resuming: bool,
    run_info: dict[str, Any],
) -> PreTrainedTokenizerBase:
    """The run's tokenizer: read back from the checkpoints folder when resuming, else trained.

    A fresh run starts an empty checkpoints folder holding the tokenizer and ``run.json``
    (what a resumed run must match), so a resumed run tokenizes exactly as the first did.
    """
    from transformers import AutoTokenizer

    if config.resume and resuming:
        _check_same_run(ckpt / RUN_FILE, run_info)
        return AutoTokenizer.from_pretrained(ckpt / TOKENIZER_DIR, trust_remote_code=False)
    if config.resume:
        warnings.warn(
            f"`resume` is set but {ckpt} holds no checkpoint; starting from step 0", stacklevel=3
        )
    if ckpt.exists():
        shutil.rmtree(ckpt)
    tokenizer = train_tokenizer(
        tokenizer_texts(graph), config.vocab_size, model_max_length=config.max_position_embeddings
    )
    ckpt.mkdir(parents=True)
    tokenizer.save_pretrained(ckpt / TOKENIZER_DIR)
    atomic_write_json(ckpt / RUN_FILE, run_info)
    return tokenizer


def _open_kb(kb: KnowledgeBase | str | Path) -> tuple[KnowledgeGraph, str, str | None]:
    """``(graph, name, checksum)`` of a KB; from a folder, only ``graph.json`` is read.

    Pretraining needs no dense index, so a folder is opened without loading the encoder
    (its files are still verified against the manifest).
    """
    from grounded.kb import KnowledgeBase, read_kb_manifest
    from kg.manifest import digest

    if isinstance(kb, KnowledgeBase):
        return kb.graph, kb.name, kb.checksum
    path = Path(kb)
    manifest = read_kb_manifest(path)  # verifies every file: the checksum names them all
    return (
        KnowledgeGraph.load(path / "graph.json"),
        manifest.get("name", "kb"),
        digest(manifest["checksums"]),
    )


@contextlib.contextmanager
def _hf_progress_bars_off() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_destination(
    out: Path,
    ckpt: Path,
    last: str | None,
    config: PretrainConfig,
    inputs: dict[str, Any] | None = None,
    kind: str | None = None,
    markers: dict[str, str] | None = None,
) -> None:
    from grounded.model.artifacts import BASE_KIND

    # A base folder of the same kind, or an empty one, is replaced; never an input.
    check_destination(
        out, kind or BASE_KIND, overwrite=config.overwrite, inputs=inputs or {}, markers=markers
    )
    refuse_inputs_inside(ckpt, inputs or {}, "--out (its checkpoints)")
    if last is not None and not config.resume and not config.overwrite:
        raise FileExistsError(
            f"{ckpt} holds checkpoints of an interrupted run (last: {Path(last).name}); pass "
            "`--resume` to continue it or `--overwrite` to start over"
        )


def _check_same_run(path: Path, expected: dict[str, Any]) -> None:
    """Raise if the checkpoints at ``path``'s folder were made by a different run."""
    if not path.is_file():
        raise ValueError(
            f"cannot resume: {path} is missing, so the checkpoints' settings are unknown; "
            "start over with `--overwrite`"
        )
    found = json.loads(path.read_text(encoding="utf-8"))
    diffs = []
    if found.get("kb", {}).get("checksum") != expected["kb"]["checksum"]:
        diffs.append(f"kb {found.get('kb', {}).get('name')!r} (another checksum)")
    old, new = found.get("settings", {}), expected["settings"]
    diffs += [
        f"`{k}` {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    if diffs:
        raise ValueError(
            f"cannot resume the run in {path.parent}: it was started with other settings ("
            + "; ".join(diffs)
            + "); resume with the same settings, or start over with `--overwrite`"
        )
