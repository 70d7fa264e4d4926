#!/bin/bash
# Evidence runs for issue 4 (sequential, 2 threads).
B=/work/main/build-hil/bin/metaplast
O=/tmp/ev4
# --init-mode uniform --init 1 --lr-decay 1 (and --levels, unused with devices): the defaults
# when these ran (issue 6 changed them).
common="--tasks mnist,fashion --epochs 5 --train-limit 10000 --threads 2 --seed 1 --init-mode uniform --init 1 --lr-decay 1"
$B train $common --mstar 3 --placement ideal --calibration /tmp/ev4/default-cal.json --out $O/ideal_m3 > $O/ideal_m3.log 2>&1
$B train $common --mstar 3 --device 'sim:?seed=1&formed=1' --out $O/hybrid_m3 > $O/hybrid_m3.log 2>&1
$B train $common --mstar 0 --device 'sim:?seed=1&formed=1' --out $O/hybrid_m0 > $O/hybrid_m0.log 2>&1
$B train $common --mstar 3 --preset on-chip --device 'sim:?seed=1&formed=1' --out $O/onchip_m3 > $O/onchip_m3.log 2>&1
$B train $common --mstar 3 --hidden 20 --placement ideal --calibration /tmp/ev4/default-cal.json --out $O/onchip_ideal_m3 > $O/onchip_ideal_m3.log 2>&1
$B train $common --mstar 0 --preset on-chip --device 'sim:?seed=1&formed=1' --out $O/onchip_m0 > $O/onchip_m0.log 2>&1
echo done > $O/done
