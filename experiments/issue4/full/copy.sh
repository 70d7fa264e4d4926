#!/bin/bash
# Keeps only summary.json, repeat_summary.json and metrics.csv of the runs of run.sh.
set -eu
O=${O:-/tmp/ev4full}
D=$(cd "$(dirname "$0")" && pwd)
for run in ideal_m3 hybrid_m3 hybrid_m0 onchip_ideal_m3 onchip_m3 onchip_m0 ideal_diff_m3 hybrid_diff_m3; do
  [ -d "$O/$run" ] || continue
  (cd "$O" && find "$run" \( -name summary.json -o -name repeat_summary.json -o -name metrics.csv \) \
    -exec install -D -m 644 {} "$D/{}" \;)
done
