#!/usr/bin/env bash
# Does the order of the test images flatter test-batch BatchNorm statistics? Our Fashion-MNIST
# files (scripts/convert_fashion.js) interleave the classes, so every test batch of 100 holds exactly
# 10 images per class. This trains the default network once per data directory, 5 + 5 epochs,
# on the same training files (so the two networks are identical), once with the Fashion-MNIST
# test files as they are and once with them shuffled (fixed seed), and prints the final test
# accuracies under both statistics (running statistics do not depend on the order).
# Usage: experiments/issue6/bn_order.sh [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/runs/issue6/bn_order}
data=${METAPLAST_DATA:-$root/data}
mkdir -p "$out/shuffled/mnist" "$out/shuffled/fashion"
cp "$data"/mnist/* "$out/shuffled/mnist/"
cp "$data"/fashion/train-* "$out/shuffled/fashion/"
/usr/bin/python3 - "$data/fashion" "$out/shuffled/fashion" <<'PY'
import sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
img = np.fromfile(f"{src}/t10k-images-idx3-ubyte", dtype=np.uint8)
lab = np.fromfile(f"{src}/t10k-labels-idx1-ubyte", dtype=np.uint8)
p = np.random.RandomState(0).permutation(10000)
np.concatenate([img[:16], img[16:].reshape(10000, 784)[p].ravel()]).tofile(f"{dst}/t10k-images-idx3-ubyte")
np.concatenate([lab[:8], lab[8:][p]]).tofile(f"{dst}/t10k-labels-idx1-ubyte")
PY
for order in interleaved shuffled; do
  dir=$data; [ "$order" = shuffled ] && dir=$out/shuffled
  rm -rf "$out/run_$order"
  "$root/build/bin/metaplast" train --epochs 5 --threads 2 --data "$dir" --out "$out/run_$order" \
    > "$out/run_$order.log" 2>&1
  /usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); \
print(sys.argv[2], 'running', d['final'], 'batch', d['final_other_bn_stats'])" \
    "$out/run_$order/summary.json" "Fashion-MNIST test files $order:"
done
