#!/usr/bin/env bash
# Set up (packages, datasets, build) and run the test suite, then again under ASan + UBSan
# (docs/testing.md). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (docs/testing.md).
if [[ ${METAPLAST_TEST_SANITIZE:-1} != 0 ]]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMETAPLAST_SANITIZE=ON \
    -DMETAPLAST_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  # The Slurm tests (label slurm) run in the pass above only: what they add to the campaign tests
  # is the real cluster, whose daemons no sanitizer watches, and they take minutes. So does the
  # commissioning campaign (label commission): its fits run on the simulated board's accelerated
  # clock, which a sanitized host slows; each measurement it composes runs here on its own. And
  # scripts/demo.sh (label demo): a shell script around commands tested here one by one.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE "slurm|commission|demo" "$@"
fi
