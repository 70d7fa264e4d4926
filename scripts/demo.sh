#!/usr/bin/env bash
# The main job on the default device: set up, build, then train the metaplastic network on
# MNIST then Fashion-MNIST and report. Extra arguments go to `metaplast train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=runs/demo-$(date +%Y%m%d-%H%M%S)
build/bin/metaplast train --tasks mnist,fashion --epochs 2 --mstar 3 --out "$out" "$@"
echo "demo: results in $out (metrics.csv, summary.json)"
