"""Summaries of issue 6's paper-scale runs (runs/issue6/paper/*): a markdown table (mean +- std
over seeds) and the m* sweep (the paper's Fig. 2a) as CSV and PNG (gnuplot).
Usage: /usr/bin/python3 experiments/issue6/table.py [RUNS_DIR] > experiments/issue6/results.md
A run named <variant>_m<mstar>_s<seed> counts toward the row <variant> m* = <mstar>."""
import csv
import glob
import json
import os
import re
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
runs = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "runs", "issue6", "paper")


def final(run_dir):
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    out = {}
    for split in ("test", "validation"):
        rows_split = [r for r in rows if r["split"] == split]
        if rows_split:
            out[split] = summarise(rows_split)
    out["done"] = os.path.exists(os.path.join(run_dir, "summary.json"))
    if "test" not in out:
        raise ValueError(f"{run_dir}: no test rows yet")
    merged = dict(out["test"])
    merged["done"] = out["done"]
    merged["dir"] = run_dir
    if "validation" in out:
        for k in ("after_a", "final_a", "final_b"):
            merged["val_" + k] = out["validation"][k]
    return merged


def summarise(tests):
    tasks = []
    for r in tests:
        if r["task_trained"] not in tasks:
            tasks.append(r["task_trained"])
    last = {t: max(int(r["epoch"]) for r in tests if r["task_trained"] == t) for t in tasks}

    def acc(trained, evaluated):
        return next(100 * float(r["accuracy"]) for r in tests
                    if (r["task_trained"], int(r["epoch"]), r["task_evaluated"]) ==
                    (trained, last[trained], evaluated))
    return {"after_a": acc(tasks[0], tasks[0]), "final_a": acc(tasks[-1], tasks[0]),
            "final_b": acc(tasks[-1], tasks[-1]), "epochs": [last[t] for t in tasks]}


groups = {}
for d in sorted(glob.glob(os.path.join(runs, "*"))):
    if not os.path.isdir(d) or not os.path.exists(os.path.join(d, "metrics.csv")):
        continue
    m = re.match(r"(.+)_m([0-9.]+)_s(\d+)$", os.path.basename(d))
    if not m:
        continue
    try:
        result = final(d)
    except (StopIteration, ValueError):
        continue
    groups.setdefault((m.group(1), float(m.group(2))), []).append((int(m.group(3)), result))


def fmt(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"


def cell(results, key):
    text = fmt([r[key] for _, r in results])
    if all("val_" + key in r for _, r in results):
        text += f" (val {fmt([r['val_' + key] for _, r in results])})"
    return text


print("Test accuracy % (validation accuracy in brackets for runs with 10 % held out; m* is chosen on it)\n")
print("| variant | m* | seeds | epochs per task | MNIST after MNIST | MNIST after Fashion | Fashion |")
print("| --- | --- | --- | --- | --- | --- | --- |")
sweep = {}
for (variant, mstar), results in sorted(groups.items()):
    results.sort()
    unfinished = [f"seed {s}: {'/'.join(str(e) for e in r['epochs'])} epochs" for s, r in results
                  if not r["done"]]
    results = [(s, r) for s, r in results if r["done"]]
    if not results:
        print(f"| {variant} | {mstar:g} | running ({'; '.join(unfinished)}) | | | | |")
        continue
    seeds = ",".join(str(s) for s, r in results)
    if unfinished:
        seeds += f" (running: {'; '.join(unfinished)})"
    epochs = "/".join(str(e) for e in results[0][1]["epochs"])
    cols = [cell(results, k) for k in ("after_a", "final_a", "final_b")]
    print(f"| {variant} | {mstar:g} | {seeds} | {epochs} | {cols[0]} | {cols[1]} | {cols[2]} |")
    seed1 = [r for s, r in results if s == 1]
    if seed1:
        sweep.setdefault(variant, []).append((mstar, seed1[0]))

for variant, points in sweep.items():
    if len(points) < 3:
        continue
    data = os.path.join(here, f"sweep_{variant}.csv")
    with open(data, "w") as f:
        f.write("mstar,mnist_after_mnist,mnist_after_fashion,fashion\n")
        for mstar, r in sorted(points):
            f.write(f"{mstar},{r['after_a']:.2f},{r['final_a']:.2f},{r['final_b']:.2f}\n")
    png = os.path.join(here, f"sweep_{variant}.png")
    script = f"""set terminal pngcairo size 800,500 noenhanced
set output '{png}'
set datafile separator ','
set key bottom left
set xlabel 'm*'
set ylabel 'test accuracy after both tasks (%)'
set yrange [0:100]
set grid
set title 'metaplast {variant}: MNIST then Fashion-MNIST, 50 + 50 epochs, seed 1'
plot '{data}' using 1:3 skip 1 with linespoints title 'MNIST (task 1)', \\
     '' using 1:4 skip 1 with linespoints title 'Fashion-MNIST (task 2)'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"\nm* sweep of {variant}: {os.path.relpath(data, here)}, {os.path.relpath(png, here)}")

# The same runs' final accuracies under both test-time BatchNorm statistics (training does not
# depend on them; summary.json carries the other one: final_other_bn_stats and, for runs with a
# validation split, final_validation_other_bn_stats; experiments/issue6/reevaluate.sh adds them to
# older summaries).
print("\nFinal accuracy % under both test-time BatchNorm statistics (every run trained with the "
      "default `--bn-stats running`; validation in brackets)\n")
print("| variant | m* | seeds | running: MNIST | running: Fashion | batch: MNIST | batch: Fashion |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (variant, mstar), results in sorted(groups.items()):
    summaries = [json.load(open(os.path.join(r["dir"], "summary.json")))
                 for _, r in sorted(results) if r["done"]]
    summaries = [s for s in summaries if "final_other_bn_stats" in s and
                 s["final_other_bn_stats"].get("bn-stats") == "batch"]
    if not summaries:
        continue

    def both(key_test, key_val, task):
        text = fmt([100 * s[key_test][task] for s in summaries])
        if all(key_val in s for s in summaries):
            text += f" (val {fmt([100 * s[key_val][task] for s in summaries])})"
        return text
    seeds = ",".join(str(s["config"]["options"]["seed"]) for s in summaries)
    print(f"| {variant} | {mstar:g} | {seeds} | {both('final', 'final_validation', 'mnist')} | "
          f"{both('final', 'final_validation', 'fashion')} | "
          f"{both('final_other_bn_stats', 'final_validation_other_bn_stats', 'mnist')} | "
          f"{both('final_other_bn_stats', 'final_validation_other_bn_stats', 'fashion')} |")
