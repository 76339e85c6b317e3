"""Scale-out: `grounded train` under `accelerate launch` with two CPU processes (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not installed")
def test_two_processes_train_one_model(tmp_path, tiny_kb, tiny_base):
    out = tmp_path / "ddp"
    cmd = [
        str(ROOT / "bench" / "accelerate_cpu.sh"), str(tiny_kb.path), str(tiny_base), str(out),
        "--max-steps", "4", "--batch-size", "2", "--feedback-every", "2",
        "--feedback-samples", "2", "--out-of-kb", "2", "--target-modules", "q_proj", "v_proj",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    grounding = json.loads((out / "grounding.json").read_text())
    assert grounding["train"]["world_size"] == 2
    assert grounding["train"]["steps"] == 4
    rounds = [json.loads(x) for x in (out / "feedback.jsonl").read_text().splitlines()]
    assert [r["n_generations"] for r in rounds] == [4, 4, 4]  # 2 per process, summed
    assert "world_size=2" in done.stdout
