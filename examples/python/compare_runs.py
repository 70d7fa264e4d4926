#!/usr/bin/env python3
"""Train twice, with and without metaplasticity, and compare what each keeps of MNIST.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/compare_runs.py --out runs/compare

Trains MNIST then Fashion-MNIST at m* = 0 (plain training: it forgets) and at the given m*, then
plots MNIST's test accuracy through both tasks for both runs (OUT/compare.png). The defaults are
the quick campaign's scale (about a minute); --epochs 50 --train-limit 0 is the paper's.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import metaplast  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the two runs and the plot")
    parser.add_argument("--mstar", type=float, default=3.0, help="m* of the metaplastic run")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per task")
    parser.add_argument("--train-limit", type=int, default=6000, help="images per task (0: all)")
    parser.add_argument("--hidden", default="256,256", help="hidden layer sizes")
    args = parser.parse_args()

    runs = {}
    for mstar in (0.0, args.mstar):
        out = os.path.join(args.out, f"mstar={mstar:g}")
        if os.path.isfile(os.path.join(out, "summary.json")):
            print(f"m* = {mstar:g}: already trained in {out}")
        else:
            print(f"m* = {mstar:g}: training into {out}")
            metaplast.train(out=out, mstar=mstar, epochs=args.epochs,
                            train_limit=args.train_limit, hidden=args.hidden.split(","),
                            progress=lambda r: print(
                                f"  {r['task']} epoch {r['epoch']}/{r['epochs']}: " + ", ".join(
                                    f"{e['task']} {100 * e['accuracy']:.1f}%"
                                    for e in r["evaluations"] if e["split"] == "test")))
        runs[mstar] = metaplast.open_run(out)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mstar, run in runs.items():
        first, first_acc = run.accuracy("mnist", "mnist")
        second, second_acc = run.accuracy("fashion", "mnist")
        epochs = list(first) + [e + len(first) for e in second]
        ax.plot(epochs, [100 * a for a in list(first_acc) + list(second_acc)], marker="o",
                label=f"m* = {mstar:g}")
        kept = run.summary["after_task"]["fashion"]
        print(f"m* = {mstar:g}: after Fashion-MNIST, MNIST {100 * kept['mnist']:.1f}%, "
              f"Fashion-MNIST {100 * kept['fashion']:.1f}%")
    ax.axvline(len(first) + 0.5, color="grey", linestyle=":")
    ax.set_xlabel("epoch (MNIST, then Fashion-MNIST)")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    png = os.path.join(args.out, "compare.png")
    fig.savefig(png, dpi=100)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
