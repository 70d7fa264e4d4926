#!/usr/bin/env bash
# Exploration runs of issue 6: full data, 10 % of each training set held out for validation
# (choices are made on validation accuracy, never the test set). Usage:
#   experiments/issue6/explore.sh NAME [metaplast train options...]
# Writes runs/issue6/NAME (git-ignored) and appends a line to experiments/issue6/explore.tsv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$1; shift
out=$root/runs/issue6/$name
"$root/build/bin/metaplast" train --validation 0.1 --out "$out" "$@" > "$out.log" 2>&1
/usr/bin/python3 "$here/summarise.py" "$name" "$out" "$*" >> "$here/explore.tsv"
