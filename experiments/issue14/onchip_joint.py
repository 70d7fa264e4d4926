#!/usr/bin/python3
"""Issue 14, item 4: what 784-20-10 can hold of both tasks at once (an upper bound for any
continual rule).

The on-chip network as `metaplast train --preset on-chip` builds it (docs/method.md 5): no bias,
BatchNorm after every layer (one state per task, gamma and beta included, as `--bn per-task` tests
each task with the state saved at its end), sign activations with the straight-through gradient
(|x| <= 1) on the 20 hidden units, softmax cross-entropy on the last BatchNorm output, weights quantized to the
default calibration's 9 levels (2 (G - G_LCS) / (G_max - G_LCS) - 1 of the level medians), hidden
weights from U(-0.05, 0.05), plain Adam (lr 0.005, batch 100, weight decay 1e-7), 20 epochs, one
10-way head shared by the two tasks, as in the continual runs. It is trained not one task after the
other but on both at once: each step's loss is a * (MNIST batch loss) + (1 - a) * (Fashion-MNIST
batch loss), one batch of each, for several weights a. The (MNIST, Fashion-MNIST) test accuracies
it reaches trace what the network can hold of the two tasks together; no rule that sees them one
after the other can do better. a = 1 and a = 0 are the single-task references.

usage: /usr/bin/python3 experiments/issue14/onchip_joint.py [--weights 1,0.9,...] [--seed S]
       [--calibration FILE] [--epochs E] [--hidden N] [--shared-bn] [--out CSV]
Prints one line per weight and writes experiments/issue14/onchip_joint.csv. Run at nice 19:
a few minutes a weight on one thread.
"""
import argparse
import csv
import json
import os
import sys

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
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims)


def load(task, split):
    prefix = "train" if split == "train" else "t10k"
    folder = os.path.join(args.data, task)
    try:
        images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"))
    except OSError as e:
        sys.exit(f"onchip_joint: {e}; fetch the data with scripts/fetch_data.sh")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def calibrated_levels(path):
    try:
        with open(path) as f:
            cal = json.load(f)
        medians = [cal["lcs"]["median_conductance_us"]]
        medians += [level["median_conductance_us"] for level in cal["hcs_levels"]]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"onchip_joint: {path}: {e}")
    lcs, top = medians[0], medians[-1]
    levels = [2.0 * (g - lcs) / (top - lcs) - 1.0 for g in medians]
    levels[0], levels[-1] = -1.0, 1.0
    return torch.tensor(sorted(levels))


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class QuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, levels):
        nearest = (w.unsqueeze(-1) - levels).abs().argmin(-1)
        return levels[nearest]

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Net(torch.nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.levels = levels
        self.w1 = torch.nn.Parameter(torch.empty(args.hidden, 784).uniform_(-0.05, 0.05))
        self.w2 = torch.nn.Parameter(torch.empty(10, args.hidden).uniform_(-0.05, 0.05))
        # One BatchNorm state (gamma, beta, running statistics) per task: the continual runs test
        # each task with the state saved at its end (--bn per-task), so the bound gets it too.
        self.bn1 = torch.nn.ModuleList([torch.nn.BatchNorm1d(args.hidden) for _ in range(2)])
        self.bn2 = torch.nn.ModuleList([torch.nn.BatchNorm1d(10) for _ in range(2)])

    def forward(self, x, task):
        task = 0 if args.shared_bn else task
        h = SignSTE.apply(self.bn1[task](x @ QuantSTE.apply(self.w1, self.levels).t()))
        return self.bn2[task](h @ QuantSTE.apply(self.w2, self.levels).t())


def accuracy(net, task, x, y):
    net.eval()
    with torch.no_grad():
        correct = (net(x, task).argmax(1) == y).sum().item()
    net.train()
    return 100.0 * correct / len(y)


def train(weight, data, levels):
    torch.manual_seed(args.seed)
    net = Net(levels)
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
    data = {(t, s): load(t, s) for t in ("mnist", "fashion") for s in ("train", "test")}
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
