"""explore.tsv -> explore_runs.txt (every exploration run with every setting whose default has
changed since written out, for explore_all.sh) and a markdown table on standard output (validation
accuracy: what the choices were made on). Usage: /usr/bin/python3 explore_table.py"""
import os
import re

here = os.path.dirname(os.path.abspath(__file__))
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(here, "explore.tsv")) if l.strip()]
runs = []
print("| run | options (besides full data, `--validation 0.1`) | validation: MNIST after MNIST -> after Fashion | Fashion |")
print("| --- | --- | --- | --- |")
for name, val, _test, _speed, options in rows:
    o = re.sub(r"\s+", " ", options.replace("/work/notes/default-cal.json", "default-cal.json")).strip()
    # The defaults when a run was made: 9 levels, W_H ~ U(-1, 1), m* = 3, constant lr.
    if "--calibration" not in o and "--levels" not in o:
        o += " --levels 9"
    if "--init-mode" not in o:
        o += " --init-mode uniform --init 1"
    if "--mstar" not in o:
        o += " --mstar 3"
    if "--lr-decay" not in o:  # constant until session 3 made 0.8 the default
        o += " --lr-decay 1"
    runs.append(f"{name} {o}")
    m = re.match(r"val: mnist ([\d.]+) -> ([\d.]+) fashion ([\d.]+)", val)
    shown = re.sub(" +", " ", o.replace("--threads 1", "")).strip()
    print(f"| {name} | `{shown}` | {m.group(1)} -> {m.group(2)} | {m.group(3)} |")
with open(os.path.join(here, "explore_runs.txt"), "w") as f:
    f.write("\n".join(runs) + "\n")
