#!/usr/bin/python3
"""Issue 14's training runs: each line of a run list is "NAME metaplast-train-options...".

Usage: run.py LIST [--jobs N] [--table-only]
Runs every line of LIST (a finished run is skipped, an interrupted one resumed with
`metaplast train --resume`) into runs/issue14/<LIST's name>/NAME (git-ignored) at nice 19, one
thread per run, N runs at once (default 2), with build/bin/metaplast (or $METAPLAST_BIN: a copy
keeps queued runs off a binary being rebuilt), then prints one line per run: MNIST after MNIST ->
after the last task (the points lost) and Fashion-MNIST, on the validation split when the run has
one (what choices are made on), else on the test sets.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("METAPLAST_BIN", os.path.join(ROOT, "build", "bin", "metaplast"))


def read_list(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, *options = line.split()
                runs.append((name, options))
    return runs


def run(out_root, name, options):
    out = os.path.join(out_root, name)
    if os.path.exists(os.path.join(out, "summary.json")):
        return
    if os.path.exists(os.path.join(out, "checkpoint.bin")):
        args = ["train", "--resume", out]
    else:
        subprocess.run(["rm", "-rf", out], check=True)
        args = ["train", "--threads", "1", "--out", out] + options
    with open(out + ".log", "a") as log:
        subprocess.run(["nice", "-n", "19", BINARY] + args, stdout=log, stderr=subprocess.STDOUT)


def result(out_root, name):
    try:
        with open(os.path.join(out_root, name, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return f"{name:36s} not finished"
    split = "validation" if "after_task_validation" in summary else "test"
    after = summary["after_task_validation"] if split == "validation" else summary["after_task"]
    first, last = after["mnist"]["mnist"] * 100, after["fashion"]["mnist"] * 100
    fashion = after["fashion"]["fashion"] * 100
    return (f"{name:36s} {split[:4]}  MNIST {first:6.2f} -> {last:6.2f} ({last - first:+7.2f})"
            f"  Fashion {fashion:6.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("list")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--table-only", action="store_true")
    a = parser.parse_args()
    runs = read_list(a.list)
    out_root = os.path.join(ROOT, "runs", "issue14", os.path.splitext(os.path.basename(a.list))[0])
    os.makedirs(out_root, exist_ok=True)
    if not a.table_only:
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            futures = {pool.submit(run, out_root, name, options): name for name, options in runs}
            for done in concurrent.futures.as_completed(futures):
                print(result(out_root, futures[done]), flush=True)
    print(f"# {a.list}")
    for name, _ in runs:
        print(result(out_root, name))


if __name__ == "__main__":
    sys.exit(main())
