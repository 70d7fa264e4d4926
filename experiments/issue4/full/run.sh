#!/bin/bash
# Issue 4 evidence on the FULL data (60,000 training images per task), 5 epochs per task, MNIST
# then Fashion-MNIST, run sequentially with 2 threads on the shared 2-core machine.
# Output: $O/<name>/ (repetitions: $O/<name>/seed-S/); only summary.json, repeat_summary.json and
# metrics.csv are kept in experiments/issue4/full/ (copy.sh).
set -u
B=${B:-/tmp/ev4full/metaplast}          # a copy of build-hil2/bin/metaplast (see README.md)
O=${O:-/tmp/ev4full}
CAL=$O/default-cal.json                 # metaplast-simboard --write-default-calibration
# --init-mode uniform --init 1 --lr-decay 1: the defaults when these ran (issue 6 changed them).
common="--tasks mnist,fashion --epochs 5 --threads 2 --seed 1 --init-mode uniform --init 1 --lr-decay 1"
board="sim:?seed=1&formed=1"
run() { name=$1; shift; echo "$(date +%T) start $name"; $B train $common "$@" --out $O/$name > $O/$name.log 2>&1; echo "$(date +%T) end $name rc=$?"; }
# 1. the hybrid vs ideal comparison at m* = 3 (3 seeds)
run ideal_m3   --mstar 3 --placement ideal --calibration $CAL --repeat 3
run hybrid_m3  --mstar 3 --device "$board" --repeat 3
# 2. forgetting without metaplasticity
run hybrid_m0  --mstar 0 --device "$board"
# 3. the on-chip preset (784-20-10, every weight on the board) and its ideal twin
run onchip_ideal_m3 --mstar 3 --hidden 20 --placement ideal --calibration $CAL --repeat 3
run onchip_m3  --mstar 3 --preset on-chip --device "$board" --repeat 3
run onchip_m0  --mstar 0 --preset on-chip --device "$board"
echo "$(date +%T) all done"
