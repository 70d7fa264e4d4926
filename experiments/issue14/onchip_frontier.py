#!/usr/bin/python3
"""Issue 14, item 4: the on-chip network's continual runs against what it can hold of both tasks
at once. Draws experiments/issue14/onchip_frontier.png (gnuplot, started with an argument vector)
from the runs of onchip.txt (runs/issue14/onchip/<rule>_m<mstar>, or _p<share> for gradient
projection; test accuracies: MNIST after Fashion-MNIST against Fashion-MNIST, one point per run) and the joint-training bounds of
onchip_joint.py (onchip_joint.csv for 20 hidden units, onchip_joint_h<N>.csv for others; a line
through the mixing weights). The target region is shaded: Fashion-MNIST >= 70 % with MNIST within
2 points of what the network learns of MNIST alone (the joint run at weight 1).
Usage: onchip_frontier.py"""
import csv
import glob
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def continual_points():
    found = {}
    for summary in sorted(glob.glob(os.path.join(ROOT, "runs/issue14/onchip/*/summary.json"))):
        m = re.fullmatch(r"(.+)_([mp])([\d.]+)", os.path.basename(os.path.dirname(summary)))
        if not m:
            continue
        with open(summary) as f:
            after = json.load(f)["after_task"]
        label = m[1] + (" (share protected)" if m[2] == "p" else " (m*)")
        found.setdefault(label, []).append(
            (float(m[3]), 100 * after["fashion"]["fashion"], 100 * after["fashion"]["mnist"]))
    return found


def joint_curves():
    curves = {}
    for path in sorted(glob.glob(os.path.join(HERE, "onchip_joint*.csv"))):
        m = re.search(r"_h(\d+)\.csv$", path)
        hidden = int(m[1]) if m else 20
        with open(path) as f:
            rows = [(float(r["mnist_weight"]), float(r["fashion_test"]), float(r["mnist_test"]))
                    for r in csv.DictReader(f)]
        curves[hidden] = sorted(rows, reverse=True)
    return dict(sorted(curves.items()))


def main():
    runs, joint = continual_points(), joint_curves()
    if 20 not in joint:
        raise SystemExit("onchip_frontier: no onchip_joint.csv: run onchip_joint.py first")
    mnist_alone = joint[20][0][2]  # weight 1 first
    dat = os.path.join(HERE, "onchip_frontier.dat")
    blocks, plots = [], []
    for hidden, rows in joint.items():
        blocks.append("\n".join(f"{w} {fa:.2f} {mn:.2f}" for w, fa, mn in rows if 0 < w < 1))
        plots.append(f"index {len(blocks) - 1} using 2:3 with linespoints lw 2 pt 7 lc {len(plots) + 1} "
                     f"title 'both tasks at once, 784-{hidden}-10 (bound)'")
    # More series than gnuplot's 8 default colours: explicit ones, and a point shape per rule.
    colours = ["#e69f00", "#d4b000", "#0072b2", "#d62728", "#000000", "#9467bd", "#009e73",
               "#56b4e9", "#8c564b", "#e377c2"]
    for k, (rule, rows) in enumerate(runs.items()):
        blocks.append("\n".join(f"{m} {fa:.2f} {mn:.2f}" for m, fa, mn in sorted(rows)))
        colour = colours[k % len(colours)]
        plots.append(f"index {len(blocks) - 1} using 2:3:(sprintf('%g', $1)) with labels "
                     f"point pt {(5, 9, 11, 13)[k % 4]} lc rgb '{colour}' tc rgb '{colour}' "
                     f"offset 0.6,0.6 font ',8' title 'one after the other: {rule}'")
    with open(dat, "w") as f:
        f.write("\n\n\n".join(blocks) + "\n")
    png = os.path.join(HERE, "onchip_frontier.png")
    floor = mnist_alone - 2
    script = f"""set terminal pngcairo size 900,650 font ',10'
set output '{png}'
set title "784-20-10 on 9 calibrated levels, 20 + 20 epochs: MNIST kept against Fashion-MNIST (test)"
set key outside below
set grid
set xlabel 'Fashion-MNIST (%)'
set ylabel 'MNIST after Fashion-MNIST (%)'
set xrange [0:90]
set yrange [0:100]
set object 1 rect from 70,{floor:.2f} to 90,100 fc rgb '#d0f0d0' fs solid 0.5 behind
set label 1 'target: Fashion >= 70 %,' at 50,{floor + 5:.1f} font ',8'
set label 2 'MNIST >= {floor:.1f} %' at 50,{floor + 2:.1f} font ',8'
plot {", ".join(f"'{dat}' {p}" for p in plots)}
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(png)


if __name__ == "__main__":
    main()
