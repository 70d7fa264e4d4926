#!/usr/bin/python3
"""Issue 14, item 4: the prototype of gradient projection (docs/method.md 5.1) on the on-chip
network's PyTorch twin (onchip_twin.py), MNIST then Fashion-MNIST, 20 + 20 epochs, test sets.

After MNIST, each layer's inputs over MNIST's 60,000 training images give the directions that
carry --share of their energy; during Fashion-MNIST every Adam step of the hidden weights is
projected off them (--mode step; --mode grad projects the gradient instead), and every --every-th
step the drift of W_Q inside them is fed back with gain --feedback. The hidden-to-output layer is
protected completely. Prints MNIST after MNIST -> after Fashion-MNIST, Fashion-MNIST and the level
changes per epoch of Fashion-MNIST. metaplast's own implementation is `metaplast train
--projection`; this script is what its design was tried on first.

usage: /usr/bin/python3 experiments/issue14/onchip_gpm.py [--share 0.98] [--feedback 0.5]
       [--every 1] [--mode step|grad] [--epochs 20] [--seed 1] [--calibration FILE]
About a minute a run on one thread.
"""
import argparse
import os

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--share", type=float, default=0.98)
parser.add_argument("--feedback", type=float, default=0.5)
parser.add_argument("--every", type=int, default=1)
parser.add_argument("--mode", choices=("step", "grad"), default="step")
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--calibration", default=None)
parser.add_argument("--data", default=None)
args = parser.parse_args()
if not 0.0 < args.share < 1.0 or args.feedback < 0 or args.every < 1 or args.epochs < 1:
    parser.error("--share must lie in (0, 1), --feedback >= 0, --every and --epochs >= 1")

os.environ["OPENBLAS_NUM_THREADS"] = "1"
import torch  # noqa: E402

import onchip_twin as twin  # noqa: E402

torch.set_num_threads(1)


def protected_projector(inputs, share):
    """U U^T for the eigen-directions of inputs^T inputs that carry `share` of the energy."""
    energy, vectors = torch.linalg.eigh(inputs.t().double() @ inputs.double())
    energy, vectors = energy.flip(0).clamp(min=0), vectors.flip(1)
    k = int((energy.cumsum(0) / energy.sum() < share).sum().item()) + 1
    u = vectors[:, :k].float()
    return u @ u.t(), k


def train_task(net, task, x, y, projectors=None):
    params = [net.w1, net.w2] + list(net.bn1[task].parameters()) + list(net.bn2[task].parameters())
    opt = torch.optim.Adam(params, lr=0.005, weight_decay=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    anchor = [q.detach().clone() for q in net.quantized()]
    previous = [q.clone() for q in anchor]
    changes, step = 0, 0
    for _ in range(args.epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 100):
            i = order[start:start + 100]
            opt.zero_grad()
            loss_fn(net(x[i], task), y[i]).backward()
            weights = (net.w1, net.w2)
            if projectors and args.mode == "grad":
                for w, p in zip(weights, projectors):
                    w.grad -= w.grad @ p
            before = [w.detach().clone() for w in weights]
            opt.step()
            step += 1
            if not projectors:
                continue
            with torch.no_grad():
                for w, b, p, a in zip(weights, before, projectors, anchor):
                    if args.mode == "step":
                        d = w - b
                        w.copy_(b + d - d @ p)
                    if args.feedback > 0 and step % args.every == 0:
                        w -= args.feedback * ((twin.QuantSTE.apply(w, net.levels) - a) @ p)
                now = [q.detach() for q in net.quantized()]
                changes += sum(int((n != q).sum()) for n, q in zip(now, previous))
                previous = [n.clone() for n in now]
    return changes / args.epochs


def main():
    torch.manual_seed(args.seed)
    levels = twin.calibrated_levels(args.calibration or twin.DEFAULT_CALIBRATION)
    data = twin.load_both(args.data or twin.DEFAULT_DATA)
    net = twin.Net(levels)
    train_task(net, 0, *data["mnist", "train"])
    first = twin.accuracy(net, 0, *data["mnist", "test"])
    net.eval()
    with torch.no_grad():
        mnist = data["mnist", "train"][0]
        p1, k1 = protected_projector(mnist, args.share)
        p2, k2 = protected_projector(net.hidden_units(mnist, 0), 1.0 - 1e-9)
    net.train()
    changes = train_task(net, 1, *data["fashion", "train"], projectors=(p1, p2))
    kept = twin.accuracy(net, 0, *data["mnist", "test"])
    fashion = twin.accuracy(net, 1, *data["fashion", "test"])
    print(f"share {args.share} feedback {args.feedback} every {args.every} ({args.mode}): "
          f"{k1} + {k2} directions; MNIST {first:.2f} -> {kept:.2f} ({kept - first:+.2f}), "
          f"Fashion-MNIST {fashion:.2f}, level changes per epoch {changes:.0f}", flush=True)


if __name__ == "__main__":
    main()
