#!/usr/bin/python3
"""What a live view costs a training (issue 15, item 5): the training bench's run (one epoch of
MNIST, 784-1024-512-10, 9 levels, m* = 3; bench/train_throughput.sh), one after the other, R times:
  plain    without --live;
  events   --live, with a client that takes every update as it comes (curl on the event
           stream, as a page reads it): what serving the view costs the run;
  open     --live, with headless Chromium already running on this machine (started idle before
           the run, as a user's browser is) and pointed at the page once the address is printed:
           serving plus the page's loading and drawing, on the run's cores;
  browser  --live, with headless Chromium started for the page once the address is printed: the
           same plus launching a browser (about 1.3 CPU s) inside the run.
Prints the samples/s of each (summary.json's samples_per_second: training steps only) and their
ratio to plain; the target is a live run within 2 % of a plain one.

    usage: /usr/bin/python3 bench/live_cost.py [--threads N] [--repeat R] [--train-limit N]
                                               [--epochs E] [--build DIR] [--json FILE]
                                               [-- TRAIN OPTIONS...]

Options after "--" go to both runs (e.g. -- --device 'sim:?formed=1' for the hybrid run, whose
view also gets the board's map). The machine should be otherwise idle."""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "live"))
import cdp  # noqa: E402  (the browser driver of the live view's tests)


def read_events(url, out_path):
    """curl on the event stream, taking every update until the run ends (a light client: what
    serving the view costs the run, not what a client costs the machine)."""
    base, token = url.split("/?")[0], url.split("token=")[1]
    with open(out_path, "w") as out:
        return subprocess.Popen(["curl", "-sN", f"{base}/api/events?since=0&token={token}"],
                                stdout=out, stderr=subprocess.DEVNULL)


def train(metaplast, out_dir, options, mode):
    """One run; `mode` events, open or browser: a client stays on the view until it ends.
    Samples/s."""
    live = mode != "plain"
    log_path = out_dir + ".log"
    command = [metaplast, "train", "--out", out_dir] + options + (["--live"] if live else [])
    page, reader = None, None
    if mode == "open":
        page = cdp.Browser(chromium(), "about:blank")
        time.sleep(3)  # the browser settles before the run starts
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        if live:
            url = None
            while url is None and process.poll() is None:
                with open(log_path) as log:
                    found = re.search(r"live view: (http://\S+)", log.read())
                url = found.group(1) if found else None
                time.sleep(0.02)
            if url is not None and mode == "open":
                page.navigate(url)
            elif url is not None and mode == "browser":
                page = cdp.Browser(chromium(), url)
            elif url is not None:
                reader = read_events(url, out_dir + ".events")
        status = process.wait()
    finally:
        if reader is not None:
            reader.wait(timeout=10)
            with open(out_dir + ".events") as events:
                taken = sum(line.startswith("data: ") for line in events)
            print(f"  the event client took {taken} updates", file=sys.stderr)
        if page is not None:
            points = page.evaluate("document.getElementById('loss-plot').dataset.points")
            page.close()
            print(f"  the page held {points} loss points at the end", file=sys.stderr)
    if status != 0:
        with open(log_path) as log:
            sys.exit(f"live_cost: {' '.join(command)} failed ({status}):\n{log.read()[-2000:]}")
    with open(os.path.join(out_dir, "summary.json")) as f:
        return json.load(f)["samples_per_second"]


def chromium():
    path = shutil.which("chromium")
    if path is None:
        sys.exit("live_cost: chromium is not installed (scripts/setup.sh installs it)")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1,
                        help="epochs of MNIST (1: the training bench's run)")
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("train_options", nargs="*", help="after --: more train options")
    args = parser.parse_args()
    metaplast = os.path.join(args.build, "bin", "metaplast")
    if not os.access(metaplast, os.X_OK):
        sys.exit(f"live_cost: {metaplast} not found: build first (scripts/setup.sh)")
    options = ["--tasks", "mnist", "--epochs", str(args.epochs), "--threads", str(args.threads), "--levels",
               "9", "--mstar", "3", "--train-limit", str(args.train_limit)] + args.train_options
    load = open("/proc/loadavg").read().split()[:3]
    work = tempfile.mkdtemp(prefix="metaplast-live-cost-")
    modes = {"plain": "without --live", "events": "--live + event client",
             "open": "--live + open Chromium here", "browser": "--live + Chromium started"}
    results = {mode: [] for mode in modes}
    try:
        for r in range(1, args.repeat + 1):
            for mode in modes:  # interleaved: drifts of the machine hit every mode
                print(f"live_cost: {mode} run {r}/{args.repeat} ...", file=sys.stderr)
                results[mode].append(
                    train(metaplast, os.path.join(work, f"{mode}.{r}"), options, mode))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: max(v) for k, v in results.items()}
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"training bench: {' '.join(options)} (load average before: {' '.join(load)}; "
          f"{os.cpu_count()} cores)")
    print(f"{'':26}{'best':>9}{'median':>9}{'best/plain':>12}   all runs (samples/s)")
    ratios = {}
    for mode, label in modes.items():
        ratios[mode] = best[mode] / best["plain"]
        runs = ", ".join(f"{x:.0f}" for x in results[mode])
        print(f"{label:26}{best[mode]:9.0f}{median[mode]:9.0f}{ratios[mode]:12.3f}   {runs}")
    for mode in ("events", "open", "browser"):
        verdict = "within" if ratios[mode] >= 0.98 else "NOT within"
        print(f"{modes[mode]}: {verdict} 2 % of the plain run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"options": options, "load_before": load, "samples_per_second": results,
                       "best_ratio_to_plain": ratios}, f, indent=1)


if __name__ == "__main__":
    main()
