#!/usr/bin/env bash
# Scale-out check: the same `grounded train` command under `accelerate launch` with two
# processes on the CPU (DistributedDataParallel over gloo). On a machine with GPUs the same
# command trains on them; add --num_machines/--machine_rank/--main_process_ip for several
# machines. No code changes either way.
#
# usage: bench/accelerate_cpu.sh KB BASE OUT [extra `grounded train` flags]
#
# Why `--multi_gpu` on a CPU machine: `accelerate launch --cpu` starts one process unless
# mpirun is installed; `--multi_gpu` starts the processes with torchrun, and grounded's
# TrainingArguments set `use_cpu` when no accelerator is visible, so accelerate sets up
# multi-CPU data parallelism (equivalently: torchrun --nproc_per_node 2 -m grounded train ...).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 KB BASE OUT [grounded train flags]" >&2
  exit 2
fi
kb=$1 base=$2 out=$3
shift 3
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
accelerate launch --multi_gpu --num_processes "${NUM_PROCESSES:-2}" --num_machines 1 \
  --mixed_precision no --dynamo_backend no --num_cpu_threads_per_process 1 \
  -m grounded train "$kb" --base "$base" --out "$out" "$@"
python - "$out" <<'PY'
import json, sys
g = json.load(open(f"{sys.argv[1]}/grounding.json"))
t = g["train"]
print(f"world_size={t['world_size']} steps={t['steps']} seconds={t['seconds']} "
      f"tokens/s per process={t['tokens_per_second']}")
PY
