#!/usr/bin/python3
"""Issue 14, item 4: what 784-20-10 can hold of both tasks at once (an upper bound for any
continual rule).

The on-chip network's twin (onchip_twin.py: 784-N-10, the default calibration's 9 levels, sign
hidden units, one BatchNorm state per task), trained with plain Adam (lr 0.005, batch 100, weight
decay 1e-7), 20 epochs, one 10-way head shared by the two tasks, as in the continual runs. It is trained not one task after the other but on both at once: each
step's loss is a * (MNIST batch loss) + (1 - a) * (Fashion-MNIST batch loss), one batch of each,
for several weights a. The (MNIST, Fashion-MNIST) test accuracies
it reaches trace what the network can hold of the two tasks together; no rule that sees them one
after the other can do better. a = 1 and a = 0 are the single-task references.

usage: /usr/bin/python3 experiments/issue14/onchip_joint.py [--weights 1,0.9,...] [--seed S]
       [--calibration FILE] [--epochs E] [--hidden N] [--shared-bn] [--out CSV]
Prints one line per weight and writes experiments/issue14/onchip_joint.csv. Run at nice 19:
a few minutes a weight on one thread.
"""
import argparse
import csv
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="1,0.9,0.8,0.7,0.5,0",
                   help="comma-separated MNIST weights a in [0, 1]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--shared-bn", action="store_true",
                   help="one BatchNorm state for both tasks (as --bn shared) instead of one per task")
    p.add_argument("--hidden", type=int, default=20,
                   help="hidden units (20: the on-chip preset; 10 and 40 fit one and two arrays)")
    p.add_argument("--calibration", default=os.path.join(ROOT, "runs/issue14/default-cal.json"),
                   help="from `metaplast-simboard --write-default-calibration FILE`")
    p.add_argument("--data", default=os.path.join(ROOT, "data"))
    p.add_argument("--out", default=os.path.join(ROOT, "experiments/issue14/onchip_joint.csv"))
    args = p.parse_args()
    try:
        args.weights = [float(w) for w in args.weights.split(",")]
    except ValueError:
        p.error(f"--weights {args.weights}: expected comma-separated numbers")
    if not all(0.0 <= w <= 1.0 for w in args.weights):
        p.error("--weights: every weight must lie in [0, 1]")
    if not 1 <= args.hidden <= 4096 or not 1 <= args.epochs <= 1000:
        p.error("--hidden must lie in [1, 4096] and --epochs in [1, 1000]")
    return args


args = parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = "1"
import torch  # noqa: E402

from onchip_twin import Net, accuracy, calibrated_levels, load_both  # noqa: E402

torch.set_num_threads(1)


def train(weight, data, levels):
    torch.manual_seed(args.seed)
    net = Net(levels, args.hidden, args.shared_bn)
    opt = torch.optim.Adam(net.parameters(), lr=0.005, weight_decay=1e-7)
    (mx, my), (fx, fy) = data["mnist", "train"], data["fashion", "train"]
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(args.epochs):
        mperm, fperm = torch.randperm(len(my)), torch.randperm(len(fy))
        for start in range(0, min(len(my), len(fy)), 100):
            mi, fi = mperm[start:start + 100], fperm[start:start + 100]
            loss = 0.0
            if weight > 0:
                loss = loss + weight * loss_fn(net(mx[mi], 0), my[mi])
            if weight < 1:
                loss = loss + (1 - weight) * loss_fn(net(fx[fi], 1), fy[fi])
            opt.zero_grad()
            loss.backward()
            opt.step()  # no clipping of W_H, as in metaplast
    return accuracy(net, 0, *data["mnist", "test"]), accuracy(net, 1, *data["fashion", "test"])


def main():
    levels = calibrated_levels(args.calibration)
    data = load_both(args.data)
    rows = []
    for weight in args.weights:
        mnist, fashion = train(weight, data, levels)
        rows.append((weight, mnist, fashion))
        print(f"a = {weight:4.2f}: MNIST {mnist:6.2f} %  Fashion-MNIST {fashion:6.2f} %", flush=True)
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["mnist_weight", "mnist_test", "fashion_test"])
        out.writerows(rows)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
