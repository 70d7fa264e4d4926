#!/usr/bin/env python3
"""Whole-array read into NumPy from Python against the command-line path, side by side.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_read.py [--repeats N] [--rounds R]

For each board (the in-process simulated board, and metaplast-simboard over TCP loopback), runs
R interleaved rounds of: build/bin/bench_array_read (ArrayBoard::read_array in C++, what
`metaplast board read` calls) and metaplast.Board.read() from Python, N reads each, and prints
both medians and their ratio. Target (issue 16): Python within 10 % of the C++ path.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

import metaplast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpp_median(binary, address, repeats):
    out = subprocess.run([binary, "--device", address, "--repeats", str(repeats)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"median ([0-9.]+) s", out).group(1))


def python_median(address, repeats):
    with metaplast.Board(address) as board:
        board.read()  # warm-up, as the C++ side
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            g = board.read()
            seconds.append(time.perf_counter() - t0)
            assert g.shape == (128, 128)
    return statistics.median(seconds)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="reads per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    args = parser.parse_args()
    binary = os.path.join(args.build, "bin/bench_array_read")
    simboard = os.path.join(args.build, "bin/metaplast-simboard")

    port = free_port()
    server = subprocess.Popen([simboard, "--seed", "1", "--formed", "--tcp", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        boards = {"in-process sim": "sim:?seed=1&formed=1", "TCP simboard": f"tcp:127.0.0.1:{port}"}
        print(f"whole-array read (128 x 128), median of {args.repeats} reads, "
              f"{args.rounds} interleaved rounds")
        worst = 0.0
        for name, address in boards.items():
            cpp, py = [], []
            for _ in range(args.rounds):
                cpp.append(cpp_median(binary, address, args.repeats))
                py.append(python_median(address, args.repeats))
            c, p = statistics.median(cpp), statistics.median(py)
            worst = max(worst, p / c)
            print(f"  {name:15s} C++ path {1e3 * c:8.3f} ms   Python {1e3 * p:8.3f} ms   "
                  f"Python / C++ {p / c:5.3f}")
        verdict = "met" if worst <= 1.10 else "NOT met"
        print(f"target Python <= 1.10 x the C++ path: {verdict} (worst {worst:.3f})")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
