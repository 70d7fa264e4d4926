#!/usr/bin/python3
"""Prints docs/method.md 7's table from run.py's output for demo.txt (demo_results.txt): per
setting, the path L one task allows (in half-widths of the 4 default levels, h = 1/3, with the
default lr-decay 0.8) and, per m*, MNIST's change after Fashion-MNIST / Fashion-MNIST.
Usage: demo_table.py demo_results.txt"""
import re
import sys

PATTERN = re.compile(r"n(\d+)_e(\d)_b(\d+)_lr([\d.]+)_m([\d.]+)\s+test\s+MNIST\s+([\d.]+) ->\s+"
                     r"([\d.]+) \(\s*([-+\d.]+)\)\s+Fashion\s+([\d.]+)$")


def path_length(images, epochs, batch, lr):
    return images // batch * lr * sum(0.8 ** e for e in range(epochs)) * 3


rows = {}
for line in open(sys.argv[1]):
    m = PATTERN.match(line.strip())
    if m:
        key = (int(m[1]), int(m[2]), int(m[3]), float(m[4]))
        rows.setdefault(key, {})[m[5]] = (float(m[8]), float(m[9]))
for key, cells in sorted(rows.items(), key=lambda kv: path_length(*kv[0])):
    images, epochs, batch, lr = key
    text = [f"{cells[m][0]:+.1f} / {cells[m][1]:.1f}" if m in cells else "" for m in ("0", "2.4", "4")]
    print(f"| {images:,} | {epochs} | {batch} | {lr} | {images // batch * epochs} | "
          f"{path_length(*key):.2g} | " + " | ".join(text) + " |")
