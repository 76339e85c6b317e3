"""Trainer callbacks of ``grounded pretrain`` (imports transformers: load it lazily)."""

from __future__ import annotations

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
