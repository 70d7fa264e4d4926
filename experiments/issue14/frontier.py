#!/usr/bin/python3
"""The frontier of each rule: MNIST kept and Fashion-MNIST against m*, from a run list's folders
(runs/issue14/<list>/<variant>_m<mstar>), as <list>_frontier.csv and <list>_frontier.png (gnuplot,
started with an argument vector). Validation accuracies when the runs have a validation split,
else test accuracies. The issue's targets are drawn: MNIST kept >= 96 %, Fashion-MNIST >= 85 %.
Usage: frontier.py LIST [--reference NAME=CSV ...]
A reference is another rule's sweep from a CSV with the columns mstar, mnist_after_fashion,
fashion (as experiments/issue6/sweep_*.csv), drawn with the list's rules."""
import csv
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def points(list_name):
    runs = os.path.join(ROOT, "runs", "issue14", list_name)
    found, split = {}, "test"
    for name in sorted(os.listdir(runs)):
        m = re.fullmatch(r"(.+)_m([\d.]+)", name)
        summary = os.path.join(runs, name, "summary.json")
        if not m or not os.path.exists(summary):
            continue
        s = json.load(open(summary))
        after = s.get("after_task_validation") or s["after_task"]
        if "after_task_validation" in s:
            split = "validation"

        found.setdefault(m[1], []).append(
            (float(m[2]), 100 * after["fashion"]["mnist"], 100 * after["fashion"]["fashion"]))
    return {variant: sorted(p) for variant, p in found.items()}, split


def reference(spec):
    name, path = spec.split("=", 1)
    with open(path) as f:
        rows = [(float(r["mstar"]), float(r["mnist_after_fashion"]), float(r["fashion"]))
                for r in csv.DictReader(f)]
    return name, sorted(rows)


def main():
    list_name = os.path.splitext(os.path.basename(sys.argv[1]))[0]
    data, split = points(list_name)
    args = sys.argv[2:]
    while args[:1] == ["--reference"] and len(args) >= 2:
        name, rows = reference(args[1])
        data[name] = [r for r in rows if 2.0 <= r[0] <= 4.0]
        args = args[2:]
    csv_path = os.path.join(HERE, f"{list_name}_frontier.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "mstar", "mnist_kept", "fashion"])
        for variant, rows in data.items():
            for row in rows:
                w.writerow([variant, *row])
    blocks = []
    for variant, rows in data.items():
        blocks.append("\n".join(f"{m} {k:.2f} {fa:.2f}" for m, k, fa in rows))
    dat = os.path.join(HERE, f"{list_name}_frontier.dat")
    with open(dat, "w") as f:
        f.write("\n\n\n".join(blocks) + "\n")
    png = os.path.join(HERE, f"{list_name}_frontier.png")
    names = list(data)
    plot = lambda column: ", ".join(
        f"'{dat}' index {i} using 1:{column} with linespoints lw 2 title '{n}'"
        for i, n in enumerate(names))
    script = f"""set terminal pngcairo size 1100,450 font ',10'
set output '{png}'
set multiplot layout 1,2 title 'Frontier of each rule ({list_name}; {split} accuracy)'
set key below
set grid
set xlabel 'm*'
set ylabel 'MNIST after Fashion-MNIST (%)'
plot {plot(2)}, 96 with lines dt 2 lc 'black' title 'target 96 %'
set ylabel 'Fashion-MNIST (%)'
plot {plot(3)}, 85 with lines dt 2 lc 'black' title 'target 85 %'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"{csv_path}\n{png}")


if __name__ == "__main__":
    main()
