#!/usr/bin/env bash
# Recomputes summary.json of finished runs from their last checkpoint (no training: the checkpoint
# is taken after the last epoch), so summaries written before a field existed gain it; used for
# final_validation_other_bn_stats (the validation accuracy under the other test-time BatchNorm
# statistics, added in session 3). Every other field must come out the same: checked here, except
# final_other_bn_stats with FIX_BATCH_EVAL=1 (summaries written before session 2 evaluated batch
# statistics with another batch size; the re-evaluation uses the training batch size, as now).
# Usage: [FIX_BATCH_EVAL=1] experiments/issue6/reevaluate.sh RUN_DIR...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
for run in "$@"; do
  tmp=$(mktemp -d)
  cp -r "$run"/. "$tmp"/
  rm "$tmp/summary.json"
  "$root/build/bin/metaplast" train --resume "$tmp" > "$tmp.log" 2>&1
  /usr/bin/python3 - "$run/summary.json" "$tmp/summary.json" <<'PY'
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:])
import os
volatile = {"final_validation_other_bn_stats", "peak_rss_mb", "train_seconds", "samples_per_second"}
if os.environ.get("FIX_BATCH_EVAL") == "1":
    volatile.add("final_other_bn_stats")
diff = [k for k in set(old) | set(new) if k not in volatile and old.get(k) != new.get(k)]
if diff:
    sys.exit(f"{sys.argv[1]}: re-evaluation differs in {diff}; summary.json left as it was")
PY
  cp "$tmp/summary.json" "$run/summary.json"
  rm -rf "$tmp" "$tmp.log"
  echo "$run: summary.json re-evaluated"
done
