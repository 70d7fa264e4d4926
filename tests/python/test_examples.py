"""Every example of examples/python/ runs on the simulated board, at a small size."""

import csv
import os
import subprocess
import sys

SOURCE = os.environ.get("METAPLAST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(SOURCE, "examples/python")


def run_example(name, *args):
    completed = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, MPLBACKEND="Agg"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000


def test_every_example_is_tested():
    assert sorted(os.listdir(EXAMPLES)) == sorted(
        ["characterize_cdfs.py", "compare_runs.py", "pymeasure_read_sweep.py"])


def test_characterize_cdfs(tmp_path):
    out = tmp_path / "char"
    stdout = run_example("characterize_cdfs.py", "--out", str(out), "--cells", "80",
                         "--cycles", "3")
    assert "80 cells measured" in stdout
    assert is_png(out / "cdf_matplotlib.png")


def test_compare_runs(tmp_path):
    stdout = run_example("compare_runs.py", "--out", str(tmp_path), "--epochs", "1",
                         "--train-limit", "800", "--hidden", "64")
    assert "m* = 0: after Fashion-MNIST" in stdout and "m* = 3: after Fashion-MNIST" in stdout
    assert is_png(tmp_path / "compare.png")


def test_pymeasure_read_sweep(tmp_path):
    out = tmp_path / "sweep.csv"
    run_example("pymeasure_read_sweep.py", "--out", str(out), "--points", "4")
    with open(out) as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    assert rows[0][0] == "Read voltage (V)" and len(rows) == 5
    voltages = [float(r[0]) for r in rows[1:]]
    assert voltages == sorted(voltages) and voltages[0] < voltages[-1]
