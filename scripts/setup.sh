#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine (run as root): installs the Debian packages metaplast
# needs, fetches and checks the datasets (scripts/fetch_data.sh) and builds into build/.
# Idempotent: a second run installs nothing, downloads nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(cmake g++ make pkg-config ca-certificates
  libboost-dev libserialport-dev libeigen3-dev nlohmann-json3-dev libspdlog-dev catch2
  libcli11-dev libopenblas-dev libopenblas0-pthread gnuplot-nox libhdf5-dev hdf5-tools
  slurm-wlm munge
  pybind11-dev python3-dev python3-numpy python3-pytest python3-pymeasure python3-matplotlib
  chromium)
# slurm-wlm and munge: tests/slurm start a cluster of their own in a temporary folder, on their own
# ports and munge socket (docs/testing.md); services the packages may start are not used.
# pybind11-dev .. python3-matplotlib: the Python module, its tests and examples (docs/python.md),
# for Debian's /usr/bin/python3. chromium: the live view's browser test drives it headless
# (docs/live.md).
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bash scripts/fetch_data.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
