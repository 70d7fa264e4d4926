"""The on-chip network's PyTorch twin, shared by onchip_joint.py and onchip_gpm.py.

784-N-10 as `metaplast train --preset on-chip` builds it (docs/method.md 5): no bias, BatchNorm
after every layer (one state per task, gamma and beta included, as `--bn per-task` tests each task
with the state saved at its end), sign activations with the straight-through gradient (|x| <= 1)
on the hidden units, softmax cross-entropy on the last BatchNorm output, weights quantized to the
default calibration's 9 levels (2 (G - G_LCS) / (G_max - G_LCS) - 1 of the level medians), hidden
weights from U(-0.05, 0.05). Import after setting OPENBLAS_NUM_THREADS (torch reads it once).
"""
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CALIBRATION = os.path.join(ROOT, "runs/issue14/default-cal.json")
DEFAULT_DATA = os.path.join(ROOT, "data")


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims)


def load(data_dir, task, split):
    """(images / 255 as N x 784 floats, labels) of data_dir/task's train or test split."""
    prefix = "train" if split == "train" else "t10k"
    folder = os.path.join(data_dir, task)
    try:
        images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"))
    except OSError as e:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {e}; fetch the data with scripts/fetch_data.sh")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_both(data_dir):
    """{(task, split): (x, y)} for MNIST and Fashion-MNIST, train and test."""
    return {(t, s): load(data_dir, t, s) for t in ("mnist", "fashion") for s in ("train", "test")}


def calibrated_levels(path):
    try:
        with open(path) as f:
            cal = json.load(f)
        medians = [cal["lcs"]["median_conductance_us"]]
        medians += [level["median_conductance_us"] for level in cal["hcs_levels"]]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {path}: {e} (write it with "
                 "`build/bin/metaplast-simboard --write-default-calibration FILE`)")
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
    def __init__(self, levels, hidden=20, shared_bn=False):
        super().__init__()
        self.levels = levels
        self.shared_bn = shared_bn
        self.w1 = torch.nn.Parameter(torch.empty(hidden, 784).uniform_(-0.05, 0.05))
        self.w2 = torch.nn.Parameter(torch.empty(10, hidden).uniform_(-0.05, 0.05))
        # One BatchNorm state (gamma, beta, running statistics) per task: the continual runs test
        # each task with the state saved at its end (--bn per-task).
        self.bn1 = torch.nn.ModuleList([torch.nn.BatchNorm1d(hidden) for _ in range(2)])
        self.bn2 = torch.nn.ModuleList([torch.nn.BatchNorm1d(10) for _ in range(2)])

    def quantized(self):
        """W_Q of both layers (input layer first)."""
        return [QuantSTE.apply(w, self.levels) for w in (self.w1, self.w2)]

    def hidden_units(self, x, task):
        task = 0 if self.shared_bn else task
        return SignSTE.apply(self.bn1[task](x @ QuantSTE.apply(self.w1, self.levels).t()))

    def forward(self, x, task):
        h = self.hidden_units(x, task)
        task = 0 if self.shared_bn else task
        return self.bn2[task](h @ QuantSTE.apply(self.w2, self.levels).t())


def accuracy(net, task, x, y):
    net.eval()
    with torch.no_grad():
        correct = (net(x, task).argmax(1) == y).sum().item()
    net.train()
    return 100.0 * correct / len(y)
