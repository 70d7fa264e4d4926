#!/usr/bin/env bash
# Issue 4 evidence for the on-chip preset with its own defaults (`--preset on-chip`: 784-20-10,
# all 15,880 weights on the board, BNN rule at m* = 4 from U(-0.05, 0.05), constant rate, 20
# epochs per task; docs/method.md 5). Full data, MNIST then Fashion-MNIST, test sets, 1 thread,
# 15 seeds (--repeat 15, the paper's Fig. 5a; seed S samples the devices and the initialisation):
#   ideal:    the same network with every weight exactly on the calibration's 9 levels
#   board:    every weight on the in-process simulated board (sim:?seed=1&formed=1)
#   board_m0: the same without metaplasticity (--mstar 0), seed 1
#   board_m3: the same at --mstar 3 (the hybrid evidence's m*; with this rule it keeps less)
#   ideal_m3: its ideal twin
# Runs go to $O (default runs/issue4/onchip, git-ignored); summary.json, repeat_summary.json and
# metrics.csv are copied here; ../full/table.py prints the table:
#   /usr/bin/python3 experiments/issue4/full/table.py experiments/issue4/onchip ideal board board_m0 board_m3 ideal_m3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
B=$root/build/bin/metaplast
O=${O:-$root/runs/issue4/onchip}
mkdir -p "$O"
cal=$O/default-cal.json
"$root/build/bin/metaplast-simboard" --write-default-calibration "$cal"
board="sim:?seed=1&formed=1"
run() {
  local name=$1; shift
  if [ -f "$O/$name/summary.json" ] || [ -f "$O/$name/repeat_summary.json" ]; then
    echo "$name: done"; return
  fi
  echo "$(date -u +%T) start $name"
  "$B" train --preset on-chip --threads 1 --seed 1 "$@" --out "$O/$name" > "$O/$name.log" 2>&1
  echo "$(date -u +%T) end $name"
}
run ideal --placement ideal --calibration "$cal" --repeat 15
run board --device "$board" --repeat 15
run board_m0 --device "$board" --mstar 0
run board_m3 --device "$board" --mstar 3 --repeat 15
run ideal_m3 --placement ideal --calibration "$cal" --mstar 3 --repeat 15
for name in ideal board board_m0 board_m3 ideal_m3; do
  (cd "$O" && find "$name" \( -name summary.json -o -name repeat_summary.json -o -name metrics.csv \) \
    -exec install -D -m 644 {} "$here/{}" \;)
done
