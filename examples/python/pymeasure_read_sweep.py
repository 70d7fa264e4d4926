#!/usr/bin/env python3
"""A PyMeasure procedure that sweeps the board's read voltage and records the array's conductance.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/pymeasure_read_sweep.py \
        --device 'sim:?seed=1&formed=1' --out runs/read-sweep.csv

At each read voltage it reads the whole array and records the median and the interquartile range
of the conductance; PyMeasure's Results file (CSV with its header) holds one line per voltage.
A read at a lower voltage gives a smaller current for the same conductance, so the spread of the
reads (the ADC's step in uS) grows as the voltage falls.
"""

import argparse
import logging

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter, Procedure, Results
from pymeasure.experiment.workers import Worker

from metaplast.pymeasure import ArrayBoard

log = logging.getLogger(__name__)


class ReadVoltageSweep(Procedure):
    device = Parameter("Board address", default="sim:?seed=1&formed=1")
    start_v = FloatParameter("Start read voltage", units="V", default=0.05)
    stop_v = FloatParameter("Stop read voltage", units="V", default=0.3)
    points = IntegerParameter("Points", default=6)

    DATA_COLUMNS = ["Read voltage (V)", "Median conductance (uS)", "IQR (uS)",
                    "Distinct codes"]

    def startup(self):
        self.board = ArrayBoard(self.device)

    def execute(self):
        voltages = np.linspace(self.start_v, self.stop_v, self.points)
        for i, v in enumerate(voltages):
            self.board.read_voltage = float(v)
            g, codes = self.board.read_array(with_codes=True)
            q1, median, q3 = np.percentile(g, [25, 50, 75])
            self.emit("results", {"Read voltage (V)": self.board.read_voltage,
                                  "Median conductance (uS)": median, "IQR (uS)": q3 - q1,
                                  "Distinct codes": len(np.unique(codes))})
            self.emit("progress", 100 * (i + 1) / len(voltages))
            if self.should_stop():
                log.warning("stopped")
                break

    def shutdown(self):
        if hasattr(self, "board"):
            self.board.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="sim:?seed=1&formed=1")
    parser.add_argument("--out", required=True, help="results file (CSV)")
    parser.add_argument("--start", type=float, default=0.05)
    parser.add_argument("--stop", type=float, default=0.3)
    parser.add_argument("--points", type=int, default=6)
    args = parser.parse_args()

    procedure = ReadVoltageSweep()
    procedure.device = args.device
    procedure.start_v, procedure.stop_v, procedure.points = args.start, args.stop, args.points
    results = Results(procedure, args.out)
    worker = Worker(results)
    worker.start()
    worker.join(timeout=600)
    data = results.data
    print(data.to_string(index=False))
    if len(data) != args.points:
        raise SystemExit(f"the sweep ended after {len(data)} of {args.points} points")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
