#!/usr/bin/env bash
# Runs the libFuzzer targets (docs/testing.md): builds build-fuzz with clang, ASan and UBSan, runs
# each target for SECONDS (default 600) at nice 19, then merges what it found that adds coverage
# into the target's corpus under tests/fuzz/corpus/ (replayed by ctest in every build).
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]     targets: the names of tests/fuzz/targets/*.cpp
# A crash stops the script with libFuzzer's report; the crashing input is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/targets/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMETAPLAST_FUZZ=ON \
  -DMETAPLAST_NATIVE=OFF >/dev/null
for t in "${targets[@]}"; do
  cmake --build build-fuzz -j"$(nproc)" --target "fuzz_$t"
done
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/$t
  work=build-fuzz/corpus-$t
  mkdir -p "$corpus" "$work"
  echo "fuzz: $t for $seconds s"
  (cd build-fuzz && nice -n 19 "./fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=4096 \
    -timeout=20 -print_final_stats=1 "corpus-$t" "../$corpus") 2>&1 | tail -n 15
  # Keep only the inputs that add coverage, under content-hash names.
  merged=build-fuzz/merged-$t
  rm -rf "$merged" && mkdir -p "$merged"
  "./build-fuzz/fuzz/fuzz_$t" -merge=1 "$merged" "$corpus" "$work" 2>/dev/null
  rm -rf "$corpus" && mv "$merged" "$corpus"
  echo "fuzz: $t corpus now $(ls "$corpus" | wc -l) files"
done
