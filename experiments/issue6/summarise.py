"""One tab-separated line per run: name, accuracy after each task's last epoch on the validation
split (what choices are made on) and on the test split, throughput, options.
Usage: summarise.py NAME RUN_DIR "OPTIONS" (called by explore.sh)."""
import csv
import json
import sys

name, run_dir, options = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(f"{run_dir}/metrics.csv")))
tasks = []
for r in rows:
    if r["task_trained"] not in tasks:
        tasks.append(r["task_trained"])
last_epoch = {t: max(int(r["epoch"]) for r in rows if r["task_trained"] == t) for t in tasks}


def acc(trained, evaluated, split):
    for r in rows:
        if (r["task_trained"], int(r["epoch"]), r["task_evaluated"], r["split"]) == (
                trained, last_epoch[trained], evaluated, split):
            return 100 * float(r["accuracy"])
    return float("nan")


parts = [name]
for split in ("validation", "test"):
    first, last = tasks[0], tasks[-1]
    parts.append(f"{split[:3]}: {first} {acc(first, first, split):.2f} -> {acc(last, first, split):.2f}"
                 f" {last} {acc(last, last, split):.2f}")
summary = json.load(open(f"{run_dir}/summary.json"))
parts.append(f"{summary.get('samples_per_second', 0):.0f} samples/s")
parts.append(options)
print("\t".join(parts))
