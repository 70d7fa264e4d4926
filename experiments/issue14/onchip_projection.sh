#!/usr/bin/env bash
# Issue 14, item 4: the on-chip network (784-20-10, --preset on-chip: 20 + 20 epochs, U(-0.05,
# 0.05), constant rate) with gradient projection instead of metaplasticity (--mstar 0
# --projection 0.98), the drift fed back at every step with gain 0.5 (*_proj) or at every 10th
# with gain 1 (*_proj_every10), each chosen on the validation split: docs/method.md 5.1. Full data, MNIST then Fashion-MNIST, test sets, 1 thread, 15 seeds (--repeat 15, as
# experiments/issue4/onchip/run.sh):
#   ideal_*: every weight exactly on the default calibration's 9 levels
#   board_*: every weight on the in-process simulated board (sim:?seed=1&formed=1), seed 1
#               only: the projection's feedback rewrites ~2.5 M levels per epoch of the second task
#               and wears the devices out (docs/method.md 5.1), a few minutes a seed on an idle
#               machine; a second seed was stopped half-way
# Runs go to $O (default runs/issue14/onchip_projection, git-ignored); summary.json,
# repeat_summary.json and metrics.csv are copied next to this script, and
#   /usr/bin/python3 experiments/issue4/full/table.py experiments/issue14/onchip_projection ideal_proj board_proj ideal_proj_every10 board_proj_every10
# prints the table. About 5 minutes for ideal_proj and 3 for board_proj on an idle machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=${METAPLAST_BIN:-$root/build/bin/metaplast}
O=${O:-$root/runs/issue14/onchip_projection}
mkdir -p "$O"
cal=$O/default-cal.json
"$root/build/bin/metaplast-simboard" --write-default-calibration "$cal"
board="sim:?seed=1&formed=1"
projection=(--mstar 0 --projection 0.98)
run() {
  local name=$1; shift
  if [ -f "$O/$name/summary.json" ] || [ -f "$O/$name/repeat_summary.json" ]; then
    echo "$name: done"; return
  fi
  echo "$(date -u +%T) start $name"
  nice -n 19 "$B" train --preset on-chip --threads 1 --seed 1 "${projection[@]}" "$@" \
    --out "$O/$name" > "$O/$name.log" 2>&1
  echo "$(date -u +%T) end $name"
}
every_step=(--projection-feedback 0.5)
every_10=(--projection-feedback 1 --projection-feedback-every 10)
run ideal_proj --placement ideal --calibration "$cal" --repeat 15 "${every_step[@]}"
run board_proj --device "$board" "${every_step[@]}"
run ideal_proj_every10 --placement ideal --calibration "$cal" --repeat 15 "${every_10[@]}"
run board_proj_every10 --device "$board" "${every_10[@]}"
mkdir -p "$here/onchip_projection"
for name in ideal_proj board_proj ideal_proj_every10 board_proj_every10; do  # board_*: one run
  (cd "$O" && find "$name" \( -name summary.json -o -name repeat_summary.json -o -name metrics.csv \) \
    -exec install -D -m 644 {} "$here/onchip_projection/{}" \;)
done
