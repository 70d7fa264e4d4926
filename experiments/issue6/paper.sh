#!/usr/bin/env bash
# Paper-scale run of issue 6: full data (60,000 images per task, no validation split), 50 epochs
# of MNIST then 50 of Fashion-MNIST, accuracy on the test sets. Resumes an interrupted run
# (checkpoint.bin, `metaplast train --resume`), skips a finished one (summary.json).
# Usage: experiments/issue6/paper.sh NAME [metaplast train options...]
# Results: runs/issue6/paper/NAME (git-ignored); summarise with experiments/issue6/table.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
name=$1; shift
out=$root/runs/issue6/paper/$name
mkdir -p "$(dirname "$out")"
if [ -f "$out/summary.json" ]; then
  echo "$name: finished"
elif [ -f "$out/checkpoint.bin" ]; then
  "$root/build/bin/metaplast" train --resume "$out" >> "$out.log" 2>&1
else
  rm -rf "$out"
  "$root/build/bin/metaplast" train --epochs 50 --threads 1 --out "$out" "$@" > "$out.log" 2>&1
fi
