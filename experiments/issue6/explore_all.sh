#!/usr/bin/env bash
# Reruns every exploration run of issue 6 (experiments/issue6/explore_runs.txt: "NAME options",
# explicit about every setting whose default changed since), two at a time, appending to
# explore.tsv. The on-chip runs need default-cal.json in the working directory:
#   build/bin/metaplast-simboard --write-default-calibration default-cal.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
xargs -P 2 -L 1 "$here/explore.sh" < "$here/explore_runs.txt"
