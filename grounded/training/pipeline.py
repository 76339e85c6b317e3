"""`train`: build the data, wrap the base model, fine-tune, save the grounded model folder.

The same function runs in one process or under ``accelerate launch`` with several: every
process builds the same examples (deterministic from the seed), the Trainer shards the
batches, and only the main process writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.config import to_dict
from grounded.data.groups import EntityGroups, training_out_of_kb_pairs
from grounded.data.prompts import format_example, resolve_prompt_format
from grounded.training.config import TrainConfig
from grounded.training.groups import decide_groups, n_out_of_kb
from kg.io import atomic_directory, atomic_write_json
from kg.manifest import check_destination, refuse_inputs_inside

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.model.bases import ResolvedBase
    from grounded.types import AnswerJudge

logger = logging.getLogger(__name__)

GROUPS_NAME = "groups.json"
FEEDBACK_LOG = "feedback.jsonl"
DPO_PAIRS = "dpo_pairs.jsonl"


@dataclass
class TrainResult:
    """What a training run did and where it wrote.

    Attributes:
        out: the model folder.
        steps: optimizer steps completed (including those before a resume).
        seconds: wall time of the training loop in this session.
        tokens_per_second: real prompt + answer tokens of the batches per second, this
            process (feedback rounds included in the time).
        world_size: processes that trained.
        resumed_from: the step training resumed from, or None.
        log_history: the Trainer's log (loss terms per logging step).
        feedback: per feedback round: step, generations, refuted, refuted share (summed
            over processes); the last entry is the post-training round.
        groups: the entity groups.
        model, tokenizer: the trained :class:`GroundingModel` (in memory, on its device) and
            the tokenizer, e.g. for ``GroundedModel(result.model, result.tokenizer, kb, ...)``.
    """

    out: Path
    steps: int
    seconds: float
    tokens_per_second: float
    world_size: int
    resumed_from: int | None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    groups: EntityGroups | None = None
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)


def resolve_precision(precision: str) -> tuple[bool, bool]:
    """``(bf16, fp16)`` for a ``precision`` setting on this machine.

    Raises:
        ValueError: bf16 or fp16 asked for without a CUDA GPU (or bf16 on one without it).
    """
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        if cuda and torch.cuda.is_bf16_supported():
            return True, False
        return False, cuda
    if precision in ("bf16", "fp16") and not cuda:
        raise ValueError(
            f"`precision` {precision!r} needs a CUDA GPU and none is visible; use `auto` "
            "(fp32 on the CPU) or `fp32`"
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("`precision` 'bf16' is not supported by this GPU; use `fp16` or `auto`")
    return precision == "bf16", precision == "fp16"


def training_arguments(config: TrainConfig, output_dir: Path, *, show_progress: bool) -> Any:
    """The ``TrainingArguments`` of ``config`` (checkpoints written to ``output_dir``): the
    optimiser section through :meth:`OptimConfig.training_arguments`, plus this run's
    precision, checkpoints and devices."""
    import torch

    bf16, fp16 = resolve_precision(config.precision)
    # Without an accelerator, say so: under `accelerate launch` / torchrun with several
    # processes, accelerate then sets up CPU data parallelism (gloo) instead of treating each
    # process as a separate single-process run.
    use_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    return config.optim.training_arguments(
        output_dir,
        seed=config.seed,
        use_cpu=use_cpu,
        bf16=bf16,
        fp16=fp16,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        optim="adamw_torch",
        remove_unused_columns=False,  # examples stay dicts until the Batcher
        label_names=[],
        disable_tqdm=not show_progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
    )


def checkpoint_dir(out: str | Path, config: TrainConfig) -> Path:
    """Where checkpoints go: ``config.checkpoint_dir`` or ``OUT.checkpoints`` beside OUT."""
    out = Path(out)
    return (
        Path(config.checkpoint_dir)
        if config.checkpoint_dir
        else out.with_name(out.name + ".checkpoints")
    )


def train(
    kb: KnowledgeBase | str | Path,
    base: str | Path | ResolvedBase,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    judge: AnswerJudge | None = None,
    checker: str | Path | None = None,
    callbacks: list | None = None,
    show_progress: bool = True,
    base_cache: str | Path | None = None,
) -> TrainResult:
    """Fine-tune a grounded adapter of ``base`` on ``kb`` and save it to ``out``.

    A run that fails (an error, Ctrl-C) leaves no partial model folder. Its checkpoint
    folder is removed when this run created it and no checkpoint was saved yet; when it holds
    checkpoints it is kept, the log says where, and the same call with ``resume=True``
    (``--resume``) continues from the last one (``overwrite=True`` starts over).

    Args:
        kb: the knowledge base (object or folder).
        base: the base model: a local Hugging Face causal-LM checkpoint folder, a ``.gguf``
            file (or a folder holding one), a name such as ``smollm2``, or a
            :class:`~grounded.model.bases.ResolvedBase` (a GGUF source is converted once,
            into the cache of :func:`~grounded.model.bases.resolve_base`).
        out: the model folder to write (atomically, when training ends).
        config: training settings (defaults if None), retrieval included; see
            :data:`VARIANTS` for the evaluation variants.
        judge: the feedback rounds' judge; default: ``checker``'s verifier, else the graph.
        checker: a fact-checker folder for the default judge.
        callbacks: extra ``TrainerCallback`` objects.
        show_progress: progress bars.
        base_cache: where a GGUF base is converted to (default: ``$GROUNDED_CACHE/bases``,
            else ``~/.cache/grounded/bases``).

    Returns:
        :class:`TrainResult`.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is off, or old checkpoints exist
            and neither ``resume`` nor ``overwrite`` is on.
        FileNotFoundError: ``base`` or ``kb`` is missing (or a named base is not installed),
            or ``resume`` finds no checkpoint.
        ValueError: a setting does not fit the base model (e.g. ``prompt_format`` chat for a
            tokenizer without a chat template).
    """
    config = config or TrainConfig()
    ckpt = checkpoint_dir(out, config)
    existed = ckpt.exists()
    try:
        return _train(
            kb, base, out, config, judge=judge, checker=checker,
            callbacks=callbacks, show_progress=show_progress, base_cache=base_cache,
        )  # fmt: skip
    except BaseException as e:
        if int(os.environ.get("RANK", "0")) == 0:
            _after_failure(ckpt, created=not existed, error=e)
        raise


def _after_failure(ckpt: Path, *, created: bool, error: BaseException) -> None:
    """Remove a checkpoint folder this run created and saved nothing in; else, when it holds
    checkpoints, say where they are and how to continue."""
    if not ckpt.is_dir():
        return
    if any(ckpt.glob("checkpoint-*")):
        note = (
            f"training stopped; its checkpoints are kept in {ckpt}: run the same command with "
            "`--resume` to continue from the last one, or `--overwrite` to start over"
        )
        logger.warning(note)
        if hasattr(error, "add_note"):  # Python 3.11+: shown with the traceback
            error.add_note(note)
    elif created:
        shutil.rmtree(ckpt, ignore_errors=True)


def _train(
    kb: KnowledgeBase | str | Path,
    base: str | Path | ResolvedBase,
    out: str | Path,
    config: TrainConfig,
    *,
    judge: AnswerJudge | None = None,
    checker: str | Path | None = None,
    callbacks: list | None = None,
    show_progress: bool = True,
    base_cache: str | Path | None = None,
) -> TrainResult:
    """:func:`train` without the cleanup after a failure."""
    import transformers

    from grounded.data.examples import build_examples
    from grounded.injection.layer import get_injection
    from grounded.kb import KnowledgeBase
    from grounded.losses.registry import get_constraint
    from grounded.model.artifacts import MODEL_KIND, load_base
    from grounded.model.bases import resolve_base
    from grounded.model.batch import Batcher
    from grounded.model.generate import generate_texts
    from grounded.model.grounding import GroundingModel
    from grounded.training.adapters import get_adapter_model
    from grounded.training.feedback import FeedbackLoop, make_judge
    from grounded.training.trainer import GroundedTrainer

    config = config or TrainConfig()
    retrieval = config.retrieval
    out = Path(out)
    # Never replace the KB or the base this run reads, nor a folder of another kind.
    inputs = {"knowledge base": kb.path if isinstance(kb, KnowledgeBase) else kb, "base": base}
    inputs["checker"] = checker
    check_destination(out, MODEL_KIND, overwrite=config.overwrite, inputs=inputs)
    ckpt = checkpoint_dir(out, config)
    refuse_inputs_inside(ckpt, inputs, "--checkpoint-dir")
    args = training_arguments(config, ckpt, show_progress=show_progress)
    last = _checkpoint_to_resume(ckpt, config, remove_old=args.should_save)
    base = resolve_base(base, cache_dir=base_cache)  # a GGUF base is converted here, once
    if not isinstance(kb, KnowledgeBase):
        kb = KnowledgeBase.load(kb)
    # the evidence vectors are the index's: record the dimension the layer is built for
    config = dataclasses.replace(
        config, injection=dataclasses.replace(config.injection, evidence_dim=kb.index.dimension)
    )

    transformers.set_seed(config.seed)
    tokenizer, lm = load_base(base)
    prompt_format = resolve_prompt_format(config.data.prompt_format, tokenizer)
    if last is not None and (ckpt / GROUPS_NAME).is_file():
        groups = EntityGroups.load(ckpt / GROUPS_NAME)  # the groups fixed when the run began
        if groups.kb_checksum != kb.checksum:
            raise ValueError(
                f"the knowledge base changed since the run in {ckpt} began (checksum "
                f"{kb.checksum[:12]}… vs {groups.kb_checksum[:12]}…); resume with the same KB "
                "or start over with `--overwrite`"
            )
    else:
        groups = decide_groups(kb, base, lm, tokenizer, config)
    modes = config.modes
    examples = build_examples(
        kb,
        groups.seen,
        retriever=kb.retriever_for(retrieval) if modes else None,
        k=retrieval.k,
        text_evidence="text" in modes,
        retrieve=bool(modes),
        p_no_gold=config.data.p_no_gold,
        n_negatives=config.data.n_negatives,
        questions_per_pair=config.data.questions_per_pair,
        link_mentions=config.injection.entity_vectors,
        seed=config.seed,
        heldout_templates=groups.heldout_templates,
        p_counterfactual=config.data.p_counterfactual,
        counterfactual_exclude={s for s, _ in groups.counterfactual},
        out_of_kb=training_out_of_kb_pairs(
            kb.graph, groups, n_out_of_kb(kb, groups, config), seed=config.seed
        ),
        p_closed_book=config.data.p_closed_book,
    )
    injection = get_injection(config.injection, lm)
    model = GroundingModel(get_adapter_model(lm, config.adapter), injection)
    batcher = Batcher(
        tokenizer,
        kb,
        reads_vectors=injection.reads_vectors,
        reads_entities=injection.reads_entities,
        n_negatives=config.data.n_negatives,
        max_prompt_tokens=config.data.max_prompt_tokens,
        prompt_format=prompt_format,
        system_prompt=config.data.system_prompt,
    )
    if last is not None:
        _check_resume_settings(ckpt, config)
    if args.should_save:
        ckpt.mkdir(parents=True, exist_ok=True)
        groups.save(ckpt / GROUPS_NAME)
        atomic_write_json(ckpt / "train_config.json", config.to_dict())
    kept_rounds = _trim_feedback_log(ckpt, _step_of(last)) if args.should_save else 0
    # Rounds run before a resume: the summary lists every round, as the files do.
    earlier_rounds = _logged_rounds(ckpt) if kept_rounds else []
    feedback = None
    if config.feedback.every > 0:
        feedback = FeedbackLoop(
            # The model's answers about KB pairs are what a judge can check (not
            # counterfactual ones: the graph would call their right answers wrong).
            [dict(r) for r in examples if r["kind"] not in ("counterfactual", "out_of_kb")],
            judge or make_judge(kb, checker),
            every=config.feedback.every,
            samples=config.feedback.samples,
            batch_size=config.feedback.batch_size,
            seed=config.seed,
            log_dir=ckpt,
            dpo_export=config.feedback.dpo_export,
            render_prompt=batcher.prompt_text,  # the prompt as trained: plain or chat
            answer_prefix="" if batcher.frame is not None else " ",
            rank=args.process_index,
            first_round=kept_rounds,
        )
    trainer = GroundedTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        callbacks=callbacks,
        batcher=batcher,
        constraint=get_constraint(
            config.constraint.name,
            margin=config.constraint.margin,
            scope=config.constraint.scope,
            length_normalize=config.constraint.length_normalize,
        ),
        constraint_weight=config.constraint.weight,
        feedback_weight=config.feedback.weight,
        feedback=feedback,
        generate_fn=lambda m, exs: generate_texts(
            m, batcher, exs, max_new_tokens=config.feedback.max_new_tokens
        ),
    )
    if not show_progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # it prints every log line when tqdm is off
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    if feedback is not None:
        trainer.feedback_round(trainer.state.global_step, update_bank=False)
    seconds = time.perf_counter() - t0
    result = TrainResult(
        out=out,
        steps=trainer.state.global_step,
        seconds=round(seconds, 3),
        tokens_per_second=round(trainer.tokens_seen / max(seconds, 1e-9), 1),
        world_size=args.world_size,
        resumed_from=_step_of(last),
        log_history=list(trainer.state.log_history),
        feedback=[*earlier_rounds, *trainer.feedback_history],
        groups=groups,
        model=trainer.accelerator.unwrap_model(trainer.model),
        tokenizer=tokenizer,
    )
    if args.should_save:
        record = _grounding_record(base, kb, config, injection, result, args, batcher)
        record["train"]["examples"] = len(examples)
        if feedback is not None:
            # What judged the feedback rounds (report.md describes the variant from it).
            record["train"]["feedback_judge"] = (
                type(judge).__name__
                if judge is not None
                else f"graph + checker {Path(checker).resolve()}"
                if checker is not None
                else "graph"
            )
        _save_model_folder(out, model, groups, examples, trainer, ckpt, record)
    trainer.accelerator.wait_for_everyone()
    if args.should_save and not config.keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    return result


def _grounding_record(
    base: ResolvedBase,
    kb: KnowledgeBase,
    config: TrainConfig,
    injection: Any,
    result: TrainResult,
    args: Any,
    batcher: Any,
) -> dict[str, Any]:
    """The content of ``grounding.json`` (versions and time are added when writing)."""
    from grounded.model.grounding import trainable_parameters

    frame = batcher.frame
    example = ("{question}", "{answer}", ["{fact}"])
    return {
        "base_model": str(Path(base.folder).resolve()),
        "base": base.record(),  # what --base named, and the GGUF source of a converted one
        "kb": {
            "path": str(Path(kb.path).resolve()) if kb.path else None,
            "name": kb.name,
            "checksum": kb.checksum,
        },
        "settings": config.to_dict(),
        "retrieval": to_dict(config.retrieval),
        "injection": injection.config.to_dict(),
        "adapter": {
            "name": config.adapter.name,
            "trainable_parameters": trainable_parameters(result.model)["trainable"],
        },
        "groups": {"file": GROUPS_NAME, "counts": result.groups.counts() if result.groups else {}},
        "prompt_format": {
            # What the model was trained with and reads at load time: plain or chat.
            "format": batcher.prompt_format,
            "system": batcher.system_prompt,
            "template": frame.example(*example) if frame else format_example(*example),
            "evidence_in_prompt": "text" in config.modes,
        },
        "train": {
            "steps": result.steps,
            "seconds": result.seconds,
            "tokens_per_second": result.tokens_per_second,
            "world_size": result.world_size,
            "resumed_from": result.resumed_from,
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "feedback": result.feedback,
        },
    }


def _save_model_folder(
    out: Path,
    model: Any,
    groups: EntityGroups,
    examples: Any,
    trainer: Any,
    ckpt: Path,
    record: dict[str, Any],
) -> None:
    """Assemble the model folder in a temporary sibling and move it into place; its
    ``manifest.json`` (checksums of every file) is written last."""
    from grounded.model.artifacts import (
        save_weights,
        versions,
        write_grounding,
        write_model_manifest,
    )

    with atomic_directory(out, overwrite=True) as tmp:
        save_weights(trainer.accelerator.unwrap_model(model), tmp)
        groups.save(tmp / GROUPS_NAME)
        with open(tmp / "examples.jsonl", "w", encoding="utf-8") as fh:
            for row in examples:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        atomic_write_json(tmp / "log_history.json", trainer.state.log_history)
        for name in (FEEDBACK_LOG, DPO_PAIRS):
            if (ckpt / name).is_file():
                shutil.copyfile(ckpt / name, tmp / name)
        record["versions"] = versions()
        record["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_grounding(tmp, record)
        write_model_manifest(tmp)


def _checkpoint_to_resume(ckpt: Path, config: TrainConfig, *, remove_old: bool) -> str | None:
    """The checkpoint ``--resume`` continues from; with ``overwrite``, old ones are removed.

    Raises:
        FileNotFoundError: ``resume`` is on and there is no checkpoint.
        FileExistsError: checkpoints exist and neither ``resume`` nor ``overwrite`` is on.
    """
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None
    if config.resume and last is None:
        raise FileNotFoundError(f"`resume` is on but {ckpt} holds no checkpoint to resume from")
    if last is not None and not config.resume:
        if not config.overwrite:
            raise FileExistsError(
                f"{ckpt} holds checkpoints of an earlier run; pass `--resume` to continue it or "
                "`--overwrite` to start over"
            )
        if remove_old:
            shutil.rmtree(ckpt)
        return None
    return last


# Settings that do not change what a run computes: a resume may change them.
_RESUMABLE = frozenset(
    {"resume", "overwrite", "keep_checkpoints", "checkpoint_dir", "logging_steps",
     "save_steps", "save_total_limit", "dpo_export"}
)  # fmt: skip


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_resume_settings(ckpt: Path, config: TrainConfig) -> None:
    """Refuse ``--resume`` with settings that change the result, naming each one.

    Raises:
        ValueError: a setting differs from the one the run in ``ckpt`` began with.
    """
    path = ckpt / "train_config.json"
    if not path.is_file():
        return  # written by an older version: nothing to compare with
    saved = _flat(json.loads(path.read_text(encoding="utf-8")))
    now = _flat(config.to_dict())
    changed = [
        f"`{k}`: {saved.get(k)!r} → {now.get(k)!r}"
        for k in sorted(set(saved) | set(now))
        if k.rsplit(".", 1)[-1] not in _RESUMABLE and saved.get(k) != now.get(k)
    ]
    if changed:
        raise ValueError(
            f"`--resume` with other settings than the run in {ckpt} began with would not "
            f"reproduce it: {'; '.join(changed)}. Resume with the same settings, or start "
            "over with `--overwrite`"
        )


def _step_of(checkpoint: str | None) -> int | None:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else None


def _logged_rounds(ckpt: Path) -> list[dict[str, Any]]:
    """The feedback rounds logged in ``ckpt``, as the trainer records them (no generations)."""
    path = ckpt / FEEDBACK_LOG
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [{k: v for k, v in r.items() if k != "generations"} for r in rows]


def _trim_feedback_log(ckpt: Path, step: int | None) -> int:
    """On resume, drop logged rounds at or after the checkpoint's step (they run again);
    a fresh run drops them all. Returns the number of rounds kept."""
    kept = 0
    for name in (FEEDBACK_LOG, DPO_PAIRS):
        path = ckpt / name
        if not path.is_file():
            continue
        if step is None:
            path.unlink()
            continue
        keep = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) < step
        ]
        path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        if name == FEEDBACK_LOG:
            kept = len(keep)
    return kept
