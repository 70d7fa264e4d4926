#!/usr/bin/env python3
"""Characterise a board and plot its level CDFs (the paper's Fig. 4b) with matplotlib.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/characterize_cdfs.py \
        --device 'sim:?seed=7&formed=1' --out runs/char-py

Writes the characterisation folder (samples.csv, cdf.csv, calibration.json, ...) and
OUT/cdf_matplotlib.png: one cumulative distribution per conductance level, log conductance axis.
"""

import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: runs on a lab PC without a display, or a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import metaplast  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="sim:?seed=7&formed=1", help="board address")
    parser.add_argument("--out", required=True, help="characterisation folder (new)")
    parser.add_argument("--cells", type=int, default=500, help="cells measured")
    parser.add_argument("--cycles", type=int, default=10, help="programming cycles per level")
    parser.add_argument("--yes", action="store_true", help="allow pulses on a real board")
    args = parser.parse_args()

    def progress(report):
        if "steps_total" in report:
            print(f"\r  level {report['level']}  {report['steps_done']}/{report['steps_total']}",
                  end="", file=sys.stderr, flush=True)

    result = metaplast.characterize(device=args.device, out=args.out, cells=args.cells,
                                    cycles=args.cycles, read_repeats=0, no_registry=True,
                                    yes=args.yes, progress=progress)
    print(file=sys.stderr)
    print(f"{result['cells_measured']} cells measured, {result['bad_cells']} bad; "
          f"calibration: {result['calibration']}")

    levels = {}
    with open(os.path.join(args.out, "cdf.csv"), newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for row in rows:
            levels.setdefault(int(row["level"]), []).append(float(row["conductance_us"]))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for level, values in sorted(levels.items()):
        g = np.sort(values)
        ax.plot(g, (np.arange(g.size) + 0.5) / g.size, label=f"level {level}")
    ax.set_xscale("log")
    ax.set_xlabel("conductance (µS)")
    ax.set_ylabel("cumulative fraction of cells")
    ax.set_title(f"level CDFs, {result['board']['model']} {result['board']['serial']}")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    png = os.path.join(args.out, "cdf_matplotlib.png")
    fig.savefig(png, dpi=100)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
