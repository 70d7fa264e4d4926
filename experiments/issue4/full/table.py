#!/usr/bin/python3
# Prints the evidence table of experiments/issue4/full/ (mean +- std over seeds), or of another
# folder of runs: table.py [DIR NAME...] (e.g. experiments/issue4/onchip ideal board board_m0).
import json, os, statistics as st, sys
D = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NAMES = sys.argv[2:] or ["ideal_m3", "hybrid_m3", "hybrid_m0", "onchip_ideal_m3", "onchip_m3", "onchip_m0",
                         "ideal_diff_m3", "hybrid_diff_m3"]
def runs(name):
    base = os.path.join(D, name)
    if not os.path.isdir(base): return []
    dirs = sorted(d for d in os.listdir(base) if d.startswith("seed-"))
    paths = [os.path.join(base, d) for d in dirs] or [base]
    return [json.load(open(os.path.join(p, "summary.json"))) for p in paths
            if os.path.exists(os.path.join(p, "summary.json"))]
def ms(v):
    return "%6.2f +- %4.2f" % (100 * st.mean(v), 100 * st.stdev(v)) if len(v) > 1 else "%6.2f        " % (100 * v[0])
print("| run | n | after MNIST: MNIST | final MNIST | final Fashion | MNIST drop | max ops/device | writes/epoch (seed 1) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for name in NAMES:
    s = runs(name)
    if not s: continue
    a = [x["after_task"]["mnist"]["mnist"] for x in s]
    fm = [x["final"]["mnist"] for x in s]
    ff = [x["final"]["fashion"] for x in s]
    drop = [p - q for p, q in zip(a, fm)]
    mx = max(x["writes"]["max_per_cell"] for x in s)
    print("| %s | %d | %s | %s | %s | %s | %d | %s |" % (name, len(s), ms(a), ms(fm), ms(ff), ms(drop), mx,
          s[0]["writes"]["per_epoch"]))
