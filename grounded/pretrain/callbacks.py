"""Trainer callbacks of ``grounded pretrain`` (imports transformers: load it lazily)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback


class Recorder(TrainerCallback):
    """Logged losses, and the step and token count this run started from (non-zero on resume)."""

    def __init__(self) -> None:
        self.losses: list[tuple[int, float]] = []
        self.step_at_start = 0
        self.tokens_at_start = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_at_start = state.global_step
        self.tokens_at_start = int(state.num_input_tokens_seen or 0)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any
    ) -> None:
        if logs and "loss" in logs:
            self.losses.append((state.global_step, round(float(logs["loss"]), 6)))


class ProgressWithLoss(TrainerCallback):
    """A tqdm bar over optimizer steps showing the last logged loss (instead of printed logs)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc="pretrain", unit="step"
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any
    ) -> None:
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CpuClock(TrainerCallback):
    """CPU seconds of training (this process), carried over checkpoints.

    ``time.process_time`` counts the CPU time of every thread of the process, so with one
    thread it is the training's own compute, whatever else runs on the machine. Time spent
    probing is excluded (:meth:`exclude`). Each checkpoint gets a ``cpu.json`` with the total
    so far; a resumed run starts from the one in ``resume_from``.
    """

    FILE = "cpu.json"

    def __init__(self, resume_from: str | None = None) -> None:
        self.offset = 0.0
        if resume_from is not None:
            path = Path(resume_from) / self.FILE
            if path.is_file():
                self.offset = float(json.loads(path.read_text())["cpu_seconds"])
        self.start: float | None = None
        self.excluded = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = time.process_time()

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def total(self) -> float:
        """CPU seconds of training so far, earlier runs of a resumed one included."""
        if self.start is None:
            return self.offset
        return self.offset + time.process_time() - self.start - self.excluded

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            (folder / self.FILE).write_text(json.dumps({"cpu_seconds": self.total()}))


class ReadingCurve(TrainerCallback):
    """Every ``every`` steps, the reading probe's exact match against CPU minutes of training."""

    def __init__(self, tokenizer: Any, items: list, every: int, clock: CpuClock) -> None:
        self.tokenizer = tokenizer
        self.items = items
        self.every = every
        self.clock = clock
        self.points: list[dict[str, Any]] = []

    def measure(self, model: Any, step: int) -> None:
        from grounded.pretrain.probe import probe_reading

        t0 = time.process_time()
        was_training = model.training
        result = probe_reading(model, self.tokenizer, self.items)
        if was_training:
            model.train()
        self.clock.exclude(time.process_time() - t0)
        self.points.append(
            {
                "step": step,
                "cpu_minutes": round(self.clock.total() / 60, 2),
                "accuracy_5_lines": round(result["accuracy"], 4),
            }
        )
        print(f"[probe] step {step}: {self.points[-1]}", flush=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every and state.global_step % self.every == 0:
            self.measure(kwargs["model"], state.global_step)
