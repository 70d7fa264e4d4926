#!/usr/bin/env bash
# Runs paper-scale runs from a queue file, one at a time: each line is
# "NAME metaplast-train-options..." (see paper.sh). Several workers may share one queue (the line
# is taken under flock); lines can be appended or reordered while workers run. A finished run is
# skipped, an interrupted one resumed. Usage: worker.sh QUEUE_FILE
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
queue=$1
while true; do
  line=$(flock "$queue.lock" sh -c 'line=$(head -n 1 "$0"); [ -n "$line" ] && sed -i 1d "$0"; printf "%s" "$line"' "$queue")
  [ -z "$line" ] && exit 0
  echo "$(date -u +%FT%TZ) start $line"
  # shellcheck disable=SC2086
  "$here/paper.sh" $line && echo "$(date -u +%FT%TZ) done ${line%% *}" || echo "$(date -u +%FT%TZ) FAILED ${line%% *}"
done
