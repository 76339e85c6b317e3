"""The reader: a small Llama pretrained to answer from its evidence, tuned to no domain.

:func:`pretrain_reader` trains it on generated reading items only
(:func:`grounded.data.reading.synthetic_reading_items`): made-up entities, relations and
phrasings, 1 to k evidence lines with distractors, counterfactual evidence about well-known
names, and unanswerable items whose target is the abstention phrase. The items are written in
the grounded prompt format (:func:`grounded.data.prompts.format_prompt`) and are new at every
step, so an answer can only be read, never remembered. ``grounded pretrain KB --init reader``
then continues from it on a knowledge base's facts (:func:`grounded.pretrain.pretrain`).

The folder it writes holds ``config.json``, ``model.safetensors``, the tokenizer and
``reader.json`` (settings, versions, training figures, the probe curve, the command that
rebuilds it and the sha256 of every file, verified by :func:`load_reader`).
"""

from __future__ import annotations

import json
import platform
import random
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.answers import format_answer
from grounded.config import update_config
from grounded.data.prompts import QUESTION_PREFIX, format_prompt
from grounded.data.reading import (
    ReadingItem,
    generic_english,
    synthetic_reading_item,
    synthetic_reading_items,
)
from grounded.pretrain.config import ReaderConfig
from grounded.pretrain.model import pack_documents
from kg.io import atomic_directory, atomic_write_json, checksums
from kg.manifest import verify_checksums

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

READER_FILE = "reader.json"
READER_KIND = "grounded-reader"
PACKAGED_READER = Path(__file__).parent / "assets" / "reader"
"""The reader shipped with the package (``grounded pretrain KB --init reader``)."""
PROBE_SEED = 1  # the reading probe's items: held-out pools, a seed training never uses

__all__ = [
    "PACKAGED_READER",
    "READER_FILE",
    "ReaderResult",
    "ReadingBlocks",
    "load_reader",
    "pretrain_reader",
    "reader_command",
    "reading_probe_sets",
]


@dataclass(frozen=True)
class ReaderResult:
    """What :func:`pretrain_reader` wrote: the folder and the contents of its manifest."""

    path: Path
    manifest: dict[str, Any]


def reading_probe_sets(n: int = 200, *, seed: int = PROBE_SEED) -> dict[str, list[ReadingItem]]:
    """The reading probe's item sets: ``n`` fresh held-out items each.

    Entities are made up; relations and phrasings come from the held-out pools that training
    never draws from. ``"1_line"`` and ``"5_lines"``: answerable items with one answer line
    at a random position among the distractors; ``"unanswerable"``: 1 to 5 lines lacking the
    subject asked (half) or the relation asked (half): the right answer is the abstention.
    """
    rng = random.Random(f"grounded-reading-probe-{seed}")
    sets: dict[str, list[ReadingItem]] = {"1_line": [], "5_lines": [], "unanswerable": []}
    for i in range(n):
        sets["1_line"].append(synthetic_reading_item(rng, 1, held_out=True))
        sets["5_lines"].append(synthetic_reading_item(rng, 5, held_out=True))
        kind = ("subject", "relation")[i % 2]
        lines = rng.randint(1, 5)
        sets["unanswerable"].append(
            synthetic_reading_item(rng, lines, unanswerable=kind, held_out=True)
        )
    return sets


def reader_tokenizer_texts(seed: int, n_items: int = 4000) -> list[str]:
    """Texts to train the reader's tokenizer on: generated reading documents, plain English.

    The tokenizer is byte-level, so any text (a user's KB included) tokenizes; the English
    words make common words whole tokens.
    """
    items = synthetic_reading_items(n_items, seed=10_000 + seed)
    docs = [
        f"{format_prompt(it.question, it.evidence)} {format_answer(it.objects)}" for it in items
    ]
    return docs + generic_english() * 5


class ReadingBlocks:
    """A map-style dataset of ``length`` packed blocks of fresh reading documents.

    Block ``i`` is a function of ``(seed, i)`` alone, so a resumed run sees the same data
    and nothing is held in memory. Its items have at most ``max_lines_at(i)`` evidence lines
    (the curriculum: 1, 2, ... ``max_lines``, each for an equal share of the first
    ``curriculum_fraction`` of the blocks).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: ReaderConfig, length: int):
        self.tokenizer = tokenizer
        self.config = config
        self.length = length

    def __len__(self) -> int:
        return self.length

    def max_lines_at(self, i: int) -> int:
        c = self.config
        ramp = c.curriculum_fraction * self.length
        if ramp <= 0:
            return c.max_lines
        return min(c.max_lines, 1 + int(c.max_lines * i / ramp))

    def documents(self, i: int) -> tuple[list[list[int]], list[int]]:
        """Block ``i``'s documents (token ids ending in EOS) and where each one's loss starts."""
        c, tok = self.config, self.tokenizer
        rng = random.Random(f"grounded-reader-block-{c.seed}-{i}")
        top = self.max_lines_at(i)
        docs: list[list[int]] = []
        starts: list[int] = []
        used = 0
        while True:
            kind = None
            if rng.random() < c.p_unanswerable:
                kind = rng.choice(("subject", "relation"))
            it = synthetic_reading_item(
                rng,
                rng.randint(1, top),
                unanswerable=kind,
                p_famous=c.p_famous,
                p_multi=c.p_multi,
                p_made_up=c.p_made_up_relation,
            )
            prompt = format_prompt(it.question, it.evidence)
            ids = tok(f"{prompt} {format_answer(it.objects)}")["input_ids"] + [tok.eos_token_id]
            if used + len(ids) > c.block_size and docs:
                return docs, starts
            docs.append(ids)
            starts.append(_loss_start(tok, prompt, c.loss_on))
            used += len(ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        docs, starts = self.documents(i)
        pad = self.tokenizer.pad_token_id
        block = pack_documents(docs, self.config.block_size, pad, label_starts=starts)[0]
        return {k: torch.tensor(v) for k, v in block.items()}


def _loss_start(tok: PreTrainedTokenizerBase, prompt: str, loss_on: str) -> int:
    """Index of the first token of a document that carries the loss."""
    if loss_on == "answer":
        return len(tok(prompt)["input_ids"])
    if loss_on == "question":
        return len(tok(prompt[: prompt.rindex(QUESTION_PREFIX)].rstrip())["input_ids"])
    return 0


def reader_command(out: str | Path, config: ReaderConfig) -> str:
    """The command line that rebuilds the reader of ``config`` at ``out``."""
    default = ReaderConfig()
    flags = []
    for key, value in config.model_settings().items():
        if value != getattr(default, key) or key == "seed":
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(["python", "-m", "grounded", "pretrain-reader", "--out", str(out), *flags])


def pretrain_reader(
    out: str | Path, config: ReaderConfig | None = None, *, show_progress: bool = True
) -> ReaderResult:
    """Pretrain a reader and save it at ``out`` (a Hugging Face checkpoint and ``reader.json``).

    Checkpoints go to ``OUT.checkpoints/`` every ``save_steps``; ``resume=True`` continues
    an interrupted run there. With one thread, the same settings rebuild the same weights.

    Raises:
        FileExistsError: ``out`` exists (or checkpoints do) and neither ``overwrite`` nor
            ``resume`` is set.
        ValueError: resuming checkpoints made with other settings.

    Example:
        >>> pretrain_reader("/tmp/reader", ReaderConfig(max_steps=3000))  # doctest: +SKIP
    """
    import torch
    import transformers
    from torch.utils.data import SequentialSampler
    from transformers import AutoTokenizer, Trainer, default_data_collator
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint

    from grounded.pretrain.callbacks import CpuClock, ProgressWithLoss, ReadingCurve, Recorder
    from grounded.pretrain.config import PretrainConfig
    from grounded.pretrain.model import build_model
    from grounded.pretrain.tokenizer import train_tokenizer
    from grounded.pretrain.train import (
        RUN_FILE,
        TOKENIZER_DIR,
        _check_destination,
        _check_same_run,
        _hf_progress_bars_off,
        _torch_threads,
        checkpoints_dir,
        training_arguments,
    )

    t0 = time.perf_counter()
    config = config or ReaderConfig()
    out = Path(out)
    ckpt = checkpoints_dir(out)
    last = get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None
    _check_destination(  # type: ignore[arg-type]
        out, ckpt, last, config, kind=READER_KIND, markers={READER_FILE: READER_KIND}
    )
    run_info = {"kb": {"checksum": None}, "settings": config.model_settings()}
    resuming = config.resume and last is not None
    if resuming:
        _check_same_run(ckpt / RUN_FILE, run_info)
        tokenizer = AutoTokenizer.from_pretrained(ckpt / TOKENIZER_DIR, trust_remote_code=False)
    else:
        if ckpt.exists():
            shutil.rmtree(ckpt)
        tokenizer = train_tokenizer(
            reader_tokenizer_texts(config.seed),
            config.vocab_size,
            model_max_length=config.max_position_embeddings,
        )
        ckpt.mkdir(parents=True)
        tokenizer.save_pretrained(ckpt / TOKENIZER_DIR)
        atomic_write_json(ckpt / RUN_FILE, run_info)

    # The base model's builder, with the reader's sizes (no grouped-query attention).
    shape = update_config(PretrainConfig(), dict(
        seed=config.seed,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        block_size=config.block_size,
    ))  # fmt: skip
    model = build_model(shape, tokenizer)
    dataset = ReadingBlocks(tokenizer, config, config.max_steps * config.batch_size)
    # ReaderConfig keeps the optimiser settings flat (one command, one job); they map onto
    # the shared optimiser section here, and through it onto TrainingArguments.
    train_shape = update_config(PretrainConfig(), dict(
        seed=config.seed,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler=config.lr_scheduler,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        save_steps=config.save_steps,
        logging_steps=config.logging_steps,
    ))  # fmt: skip
    args = training_arguments(train_shape, ckpt)

    class _InOrder(Trainer):
        # The curriculum lives in the blocks' order; each block is already random.
        def _get_train_sampler(self, *a: Any, **k: Any) -> SequentialSampler:
            return SequentialSampler(self.train_dataset)

    probe = reading_probe_sets(config.probe_items)["5_lines"]
    recorder, clock = Recorder(), CpuClock(last if resuming else None)
    curve = ReadingCurve(tokenizer, probe, config.probe_steps, clock)
    trainer = _InOrder(
        model=model,
        args=args,
        train_dataset=dataset,  # type: ignore[arg-type]
        data_collator=default_data_collator,
        processing_class=tokenizer,
        callbacks=[recorder, clock, curve],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if show_progress:
        trainer.add_callback(ProgressWithLoss())
    with _hf_progress_bars_off(), _torch_threads(config.num_threads):
        output = trainer.train(resume_from_checkpoint=last if resuming else None)
        if not curve.points or curve.points[-1]["step"] != trainer.state.global_step:
            curve.measure(model, trainer.state.global_step)

    state = trainer.state
    train_stats = {
        "steps": state.global_step,
        "resumed_from_step": recorder.step_at_start or None,
        "first_loss": recorder.losses[0][1] if recorder.losses else None,
        "final_loss": recorder.losses[-1][1] if recorder.losses else None,
        "mean_loss": round(float(output.training_loss), 6),
        "tokens": int(state.num_input_tokens_seen),
        "cpu_seconds": round(clock.total(), 1),
        "cpu_minutes": round(clock.total() / 60, 2),
        "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
        "num_threads": config.num_threads,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "device": str(args.device),
        "probe_curve": curve.points,
        "losses": recorder.losses,
    }
    manifest: dict[str, Any] = {
        "format": "grounded-reader",
        "settings": config.model_settings(),
        "command": reader_command(out, config),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": __import__("tokenizers").__version__,
        },
        "train": train_stats,
    }
    model.config.use_cache = True
    with _hf_progress_bars_off(), atomic_directory(out, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        manifest["checksums"] = checksums(tmp)
        atomic_write_json(tmp / READER_FILE, manifest)
    if not config.keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    return ReaderResult(out, manifest)


def load_reader(
    path: str | Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """The reader at ``path`` (default: the packaged one), its tokenizer and its manifest.

    Every file's sha256 is checked against ``reader.json`` first.

    Raises:
        FileNotFoundError: ``path`` holds no ``reader.json``.
        ValueError: a file differs from its checksum.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path) if path is not None else PACKAGED_READER
    mpath = folder / READER_FILE
    if not mpath.is_file():
        raise FileNotFoundError(
            f"{folder} is not a reader folder (no {READER_FILE}); build one with "
            "`python -m grounded pretrain-reader --out DIR`"
        )
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    verify_checksums(folder, manifest.get("checksums", {}))
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return model, tokenizer, manifest
