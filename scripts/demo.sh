#!/usr/bin/env bash
# The main job (README's first command): set up, build, then the full hardware-in-the-loop
# pipeline on the in-process simulated board:
#   1. characterise the board's devices (metaplast characterize) -> calibration.json,
#   2. train MNIST then Fashion-MNIST with metaplasticity (the default rule, importance, at m* = 4:
#      the value for the calibration's 9 levels at this scale), the output layer's weights on the
#      board, the hidden layers on virtual devices drawn from that calibration; then the same
#      without metaplasticity (m* = 0), the forgetting baseline, and print how much of MNIST each
#      kept,
#   3. report: accuracies, writes per epoch, the per-device programming histogram (Fig. 5b) against
#      HfO2 endurance, the memory report (15x): printed by metaplast train, plotted by
#      metaplast report (HTML page + PNGs, gnuplot). Needs no python.
# Default: about a minute once built (the first 10,000 training images of each task, 1 epoch per
# task, batch 20, learning rate 0.02: 500 steps per task, enough for the rule to consolidate MNIST;
# docs/method.md 7). Paper scale, one flag away:  bash scripts/demo.sh --paper   (every training
# image, 50 epochs per task at the defaults, 784-1024-512-10; hours, twice). Other arguments go to
# `metaplast train` (e.g. --repeat 15, --preset on-chip, --threads 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

paper=0
args=()
for a in "$@"; do
  case "$a" in
    --paper) paper=1 ;;
    -h|--help)
      sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *) args+=("$a") ;;
  esac
done

# METAPLAST_BIN: use an already built binary and skip the setup (development, tests).
# METAPLAST_DEMO_OUT: the run folder (default runs/demo-<date>-<time>).
if [ -z "${METAPLAST_BIN:-}" ]; then
  bash scripts/setup.sh
fi
bin=${METAPLAST_BIN:-build/bin/metaplast}
out=${METAPLAST_DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# One simulated chip for the whole pipeline: its cells persist in this state file.
board="sim:?seed=1&formed=1&state=$out/board-state.bin"

if [ "$paper" = 1 ]; then
  scale=(--epochs 50)
  scale_text="paper scale: every training image, 50 epochs per task"
else
  scale=(--epochs 1 --train-limit 10000 --batch 20 --lr 0.02)
  scale_text="demo scale: 10,000 training images per task, 1 epoch per task"
fi

echo "== 1/3 characterise the simulated board ($out/characterize)"
if "$bin" characterize --help > /dev/null 2>&1; then
  "$bin" characterize --device "$board" --cells 400 --cycles 10 --out "$out/characterize" \
    --chips-dir "$out/chips"
  calibration=(--calibration "$out/characterize/calibration.json")
else
  echo "metaplast characterize is not available in this build: skipping, the training uses the"
  echo "simulated board's default calibration"
  calibration=()
fi

# MNIST test accuracy (%) after MNIST and after Fashion-MNIST, from a train's printed table.
mnist_kept() {
  awk '$1 == "after" && $2 == "mnist" { first = $4 } $1 == "after" && $2 == "fashion" { last = $4 }
       END { if (first == "" || last == "") exit 1; printf "%s -> %s (%+.2f points)", first, last, last - first }' "$1" ||
    echo "(see the tables above)"
}

# The importance rule (the default) on the calibration's 9 levels: at demo scale m* = 3 loses 4.3
# to 4.7 points of MNIST, m* = 4 1.9 to 2.9 (docs/method.md 7).
mstar=4
echo "== 2/3 train MNIST then Fashion-MNIST through the board ($scale_text)"
"$bin" train --tasks mnist,fashion --mstar "$mstar" --device "$board" "${calibration[@]}" \
  --chips-dir "$out/chips" "${scale[@]}" --out "$out/train" "${args[@]}" | tee "$out/train.log"
echo "== 2/3 the same without metaplasticity (m* = 0): the forgetting baseline"
"$bin" train --tasks mnist,fashion --mstar 0 --device "$board" "${calibration[@]}" \
  --chips-dir "$out/chips" "${scale[@]}" --out "$out/train-m0" "${args[@]}" | tee "$out/train-m0.log"
echo "MNIST test accuracy after MNIST -> after Fashion-MNIST:"
echo "  with metaplasticity (m* = $mstar):    $(mnist_kept "$out/train.log")"
echo "  without metaplasticity (m* = 0): $(mnist_kept "$out/train-m0.log")"

echo "== 3/3 report (plots and an HTML page; the numbers are printed above by metaplast train)"
report_dir="$out/train"
# With --repeat the runs are in seed-* subdirectories: report the first.
if [ -f "$out/train/repeat_summary.json" ]; then
  report_dir=$(ls -d "$out/train"/seed-* | head -n 1)
fi
"$bin" report "$report_dir"
echo "level CDFs of step 1 (Fig. 4b): $out/characterize/cdf.png"
echo "demo done ($scale_text); everything is in $out"
if [ "$paper" = 0 ]; then
  echo "paper scale: bash scripts/demo.sh --paper   (add --repeat 15 for Fig. 5a's 15 repetitions)"
fi
