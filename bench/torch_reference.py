#!/usr/bin/python3
"""PyTorch reference of metaplast's default training, for bench/train_throughput.sh.

The same network and rule as `metaplast train` (docs/method.md): 784-1024-512-10, no bias,
BatchNorm1d after every layer, sign activation with the straight-through gradient (passed where
|x| <= 1) on hidden layers, softmax cross-entropy on the last BatchNorm output. Forward and
backward use the quantized weights W_Q (nearest of 9 uniform levels in [-1, 1]); their gradient
goes straight through to the hidden weights W_H, which start as metaplast's default does
(--init-mode thresholds --init 0.1: each on a threshold T_j drawn uniformly among the N - 1,
displaced by U(-0.1, 0.1) h_j; --init-mode uniform: U(-init, init)). Optimizer: Adam (betas 0.9/0.999,
eps 1e-8, weight decay 1e-7 added to the gradient, bias correction in the step size) with the
metaplastic interval rule on W_H (m* = 3): where the step moves W_H toward the threshold T_j of its
interval, the step is scaled by 1 - tanh^2(m* |W_H - T_j| / h_j). BatchNorm parameters get plain
Adam. Batch 100, lr 0.005, one shuffled epoch of the MNIST training set from the IDX files.

usage: /usr/bin/python3 bench/torch_reference.py [--threads N] [--data DIR] [--epochs E]
       [--train-limit N] (see --help for the rest)
Prints one JSON line: samples_per_second (training loop only, data loading excluded),
train_seconds (of which optimizer_seconds in optimizer.step), test_accuracy, the BLAS library
torch runs on.
"""
import argparse
import json
import math
import os
import re
import sys
import time


def parse_args():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=os.environ.get("METAPLAST_DATA") or os.path.join(repo, "data"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--mstar", type=float, default=3.0)
    parser.add_argument("--levels", type=int, default=9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--init-mode", choices=("thresholds", "uniform"), default="thresholds")
    parser.add_argument("--init", type=float, default=0.1)
    parser.add_argument("--train-limit", type=int, default=0,
                        help="use only the first N training images (0 = all), for quick checks")
    return parser.parse_args()


args = parse_args()
# OpenBLAS runs its own thread pool for the matrix products: give it the same thread count.
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402


def read_idx(path, magic):
    with open(path, "rb") as f:
        raw = f.read()
    found, = np.frombuffer(raw[:4], dtype=">u4")
    if found != magic:
        sys.exit(f"torch_reference: {path}: bad magic {found}, expected {magic}")
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims).copy())


def load(split):
    d = os.path.join(args.data, "mnist")
    images = read_idx(os.path.join(d, f"{split}-images-idx3-ubyte"), 2051).reshape(-1, 784)
    labels = read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte"), 2049).long()
    return images, labels


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class Quantizer:
    def __init__(self, n):
        self.levels = torch.linspace(-1.0, 1.0, n)
        self.lo, self.step, self.n = -1.0, 2.0 / (n - 1), n

    def initial(self, n_out, n_in):
        """W_H at the start, as metaplast's --init-mode / --init (docs/method.md 1)."""
        u = 2.0 * torch.rand(n_out, n_in) - 1.0
        if args.init_mode == "uniform":
            return args.init * u
        thresholds = (self.levels[:-1] + self.levels[1:]) / 2
        half = (self.levels[1:] - self.levels[:-1]) / 2
        j = torch.randint(0, self.n - 1, (n_out, n_in))
        return thresholds[j] + args.init * half[j] * u

    def quantize(self, w):  # nearest uniform level, saturating
        return (torch.round((w - self.lo) / self.step).clamp_(0, self.n - 1)) * self.step + self.lo


class QuantLinear(torch.nn.Module):
    def __init__(self, n_in, n_out, quantizer):
        super().__init__()
        self.weight = torch.nn.Parameter(quantizer.initial(n_out, n_in))  # W_H
        self.quantizer = quantizer

    def forward(self, x):
        w = self.weight
        w_q = w + (self.quantizer.quantize(w.detach()) - w).detach()  # value W_Q, gradient to W_H
        return torch.nn.functional.linear(x, w_q)


class Net(torch.nn.Module):
    def __init__(self, sizes, quantizer):
        super().__init__()
        self.layers = torch.nn.ModuleList(QuantLinear(a, b, quantizer) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(b) for b in sizes[1:])

    def forward(self, x):
        for k, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            x = norm(layer(x))
            if k < len(self.layers) - 1:
                x = SignSTE.apply(x)
        return x


class MetaplasticAdam(torch.optim.Optimizer):
    """Adam; on quantized hidden weights the interval rule of docs/method.md section 1."""

    def __init__(self, params, lr, mstar, quantizer, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-7):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.mstar, self.q = mstar, quantizer

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["m"], state["v"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                update = m / v.sqrt().add_(group["eps"])
                if p.dim() > 1 and self.mstar > 0:
                    q = self.q
                    j = torch.floor((p - q.lo) / q.step).clamp_(0, q.n - 2)  # containing interval
                    offset = p - (q.lo + (j + 0.5) * q.step)  # W_H - T_j
                    attenuation = 1 - torch.tanh(self.mstar * offset.abs() / (q.step / 2)).square_()
                    update = torch.where(offset * m > 0, update * attenuation, update)
                p.add_(update, alpha=-step_size)


def blas_library():
    with open("/proc/self/maps") as maps:
        libs = sorted(set(re.findall(r"/\S*lib(?:open)?blas\S*\.so\S*", maps.read())))
    return [os.path.basename(lib) for lib in libs]


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load("train")
    if args.train_limit:
        train_x, train_y = train_x[:args.train_limit], train_y[:args.train_limit]
    test_x, test_y = load("t10k")
    quantizer = Quantizer(args.levels)
    net = Net([784, 1024, 512, 10], quantizer)
    optimizer = MetaplasticAdam(net.parameters(), args.lr, args.mstar, quantizer)
    loss_fn = torch.nn.CrossEntropyLoss()

    net.train()
    n = train_x.shape[0]
    optimizer_seconds = 0.0
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(n)
        for b in range(0, n, args.batch):
            idx = order[b:b + args.batch]
            x = train_x[idx].float().div_(255.0)
            loss = loss_fn(net(x), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            before_step = time.perf_counter()
            optimizer.step()
            optimizer_seconds += time.perf_counter() - before_step
    train_seconds = time.perf_counter() - start

    net.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, test_x.shape[0], 1000):
            out = net(test_x[b:b + 1000].float().div_(255.0))
            correct += (out.argmax(1) == test_y[b:b + 1000]).sum().item()
    print(json.dumps({
        "samples_per_second": round(args.epochs * n / train_seconds, 1),
        "train_seconds": round(train_seconds, 3),
        "optimizer_seconds": round(optimizer_seconds, 3),
        "test_accuracy": correct / test_x.shape[0],
        "threads": args.threads,
        "torch": torch.__version__,
        "blas": blas_library(),
    }))


if __name__ == "__main__":
    main()
