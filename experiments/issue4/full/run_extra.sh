#!/bin/bash
# Extra (after run.sh): the differential-pair mapping (17 levels) at full data, seed 1, m* = 3,
# hybrid placement vs its ideal twin.
set -u
B=${B:-/tmp/ev4full/metaplast}
O=${O:-/tmp/ev4full}
CAL=$O/default-cal.json
# --init-mode uniform --init 1 --lr-decay 1: the defaults when these ran (issue 6 changed them).
common="--tasks mnist,fashion --epochs 5 --threads 2 --seed 1 --mapping differential --init-mode uniform --init 1 --lr-decay 1"
board="sim:?seed=1&formed=1"
run() { name=$1; shift; echo "$(date +%T) start $name"; $B train $common "$@" --out $O/$name > $O/$name.log 2>&1; echo "$(date +%T) end $name rc=$?"; }
run ideal_diff_m3  --mstar 3 --placement ideal --calibration $CAL
run hybrid_diff_m3 --mstar 3 --device "$board"
echo "$(date +%T) extra done"
