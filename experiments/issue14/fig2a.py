#!/usr/bin/python3
"""The paper's Fig. 2a for the default rule (importance): test accuracy after both tasks against
m*, from the validation-split runs of paper_val.txt (runs/issue14/paper_val/importance_m<M>; 50 + 50
epochs, seed 1, trained on 90 % of each training set as issue 6's sweep of the interval rule).
Writes fig2a_importance.csv (test and validation accuracies; rows of m* values without a run
here are kept from the file) and fig2a_importance.png (gnuplot,
started with an argument vector), with the interval rule's sweep
(experiments/issue6/sweep_val_l4thr_d0.8.csv) dashed beside it.
Usage: fig2a.py"""
import csv
import glob
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INTERVAL = os.path.join(ROOT, "experiments/issue6/sweep_val_l4thr_d0.8.csv")


def rows():
    found = []
    for summary in glob.glob(os.path.join(ROOT, "runs/issue14/paper_val/importance_m*/summary.json")):
        mstar = float(re.search(r"_m([\d.]+)$", os.path.dirname(summary))[1])
        with open(summary) as f:
            s = json.load(f)
        test, val = s["after_task"], s["after_task_validation"]
        found.append([mstar] + [round(100 * a[t][e], 2) for a in (test, val)
                                for t, e in (("mnist", "mnist"), ("fashion", "mnist"),
                                             ("fashion", "fashion"))])
    return sorted(found)


def merged(table, data):
    """The runs found, and the rows of `data` for the m* values not found (runs made on another
    machine, whose runs/ folder is gone): the sweep grows across sessions."""
    found = {row[0] for row in table}
    kept = []
    if os.path.exists(data):
        with open(data, newline="") as f:
            for row in list(csv.reader(f))[1:]:
                values = [float(v) for v in row]
                if values[0] not in found:
                    kept.append(values)
    return sorted(table + kept)


def main():
    data = os.path.join(HERE, "fig2a_importance.csv")
    table = merged(rows(), data)
    if not table:
        raise SystemExit("fig2a: no finished run in runs/issue14/paper_val: run.py paper_val.txt")
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mstar", "mnist_after_mnist", "mnist_after_fashion", "fashion",
                    "val_mnist_after_mnist", "val_mnist_after_fashion", "val_fashion"])
        w.writerows(table)
    png = os.path.join(HERE, "fig2a_importance.png")
    script = f"""set terminal pngcairo size 800,500 noenhanced
set output '{png}'
set datafile separator ','
set key bottom left
set xlabel 'm*'
set ylabel 'test accuracy after both tasks (%)'
set yrange [0:100]
set grid
set title 'metaplast, importance rule (default): MNIST then Fashion-MNIST, 50 + 50 epochs, seed 1'
plot '{data}' using 1:3 skip 1 with linespoints lw 2 lc 1 title 'MNIST (task 1)', \\
     '' using 1:4 skip 1 with linespoints lw 2 lc 2 title 'Fashion-MNIST (task 2)', \\
     '{INTERVAL}' using 1:3 skip 1 with linespoints dt 2 lc 1 title 'MNIST, interval rule', \\
     '' using 1:4 skip 1 with linespoints dt 2 lc 2 title 'Fashion-MNIST, interval rule'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    for row in table:
        print(" ".join(f"{v:g}" for v in row))
    print(f"{data}\n{png}")


if __name__ == "__main__":
    main()
