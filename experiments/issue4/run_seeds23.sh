#!/bin/bash
B=/work/main/build-hil/bin/metaplast
O=/tmp/ev4
for s in 2 3; do
# --init-mode uniform --init 1 --lr-decay 1 (and --levels, unused with devices): the defaults
# when these ran (issue 6 changed them).
common="--tasks mnist,fashion --epochs 5 --train-limit 10000 --threads 2 --seed $s --init-mode uniform --init 1 --lr-decay 1"
$B train $common --mstar 3 --placement ideal --calibration $O/default-cal.json --out $O/ideal_m3_s$s > $O/ideal_m3_s$s.log 2>&1
$B train $common --mstar 3 --device 'sim:?seed=1&formed=1' --out $O/hybrid_m3_s$s > $O/hybrid_m3_s$s.log 2>&1
$B train $common --mstar 3 --preset on-chip --device 'sim:?seed=1&formed=1' --out $O/onchip_m3_s$s > $O/onchip_m3_s$s.log 2>&1
$B train $common --mstar 3 --hidden 20 --placement ideal --calibration $O/default-cal.json --out $O/onchip_ideal_m3_s$s > $O/onchip_ideal_m3_s$s.log 2>&1
done
echo done > $O/done2
