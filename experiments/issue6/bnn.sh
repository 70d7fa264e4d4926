#!/usr/bin/env bash
# Step 1 of issue 6: the BNN case known exactly (Laborieux et al. 2021): 2 levels {-1, +1}, the
# interval rule (== the BNN rule for 2 levels, unit-tested), m = 1.5, W_H ~ U(-0.05, 0.05),
# per-task BatchNorm, 784-2048-2048-10 (the paper's 4096-4096 does not fit this project's CPU
# time), 20 epochs per task, full data, test set. Usage: bnn.sh MSTAR BN_STATS [SEED] [THREADS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mstar=$1 stats=$2 seed=${3:-1} threads=${4:-1}
out=$root/runs/issue6/bnn_m${mstar}_${stats}_s${seed}
args=(--levels 2 --init-mode uniform --init 0.05 --lr-decay 1 --mstar "$mstar" --hidden 2048,2048 --epochs 20 --bn per-task
      --bn-stats "$stats" --seed "$seed" --threads "$threads")
if [ -f "$out/checkpoint.bin" ] && [ ! -f "$out/summary.json" ]; then
  "$root/build/bin/metaplast" train --resume "$out" >> "$out.log" 2>&1
elif [ ! -f "$out/summary.json" ]; then
  "$root/build/bin/metaplast" train "${args[@]}" --out "$out" > "$out.log" 2>&1
fi
