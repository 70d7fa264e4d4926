#!/usr/bin/env bash
# ctest slurm/test_slurm_cluster: starts a real single-node Slurm cluster (slurm_cluster.sh) in a
# fresh state folder and checks what `metaplast campaign submit --slurm` relies on:
#  1. a throttled job array (--array=0-2%2) runs its tasks, two at a time, each with its own
#     SLURM_ARRAY_TASK_ID, and a job with --dependency=afterok:<array> runs after all of them;
#  2. when a task of an array is cancelled, running or still pending, a job that depends on that
#     array with afterok and --kill-on-invalid-dep=yes is cancelled (DependencyNeverSatisfied)
#     instead of pending forever, once the array's other tasks have ended; one that names a
#     running task (afterok:<array>_<task>) is cancelled at once. Not checked, as not relied on:
#     afterok on one task that was cancelled while still pending is satisfied in Slurm 22.05
#     (that task never had a job record of its own; docs/testing.md).
# The daemons it started are always stopped, by pid (trap on EXIT). Needs root; fails, never
# skips, when slurm-wlm or munge is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/slurm_cluster.sh
state_dir=$(mktemp -d /tmp/metaplast-slurm-test.XXXXXX)
work=$state_dir/work
passed=0

cleanup() {
  local status=$?
  if ((status != 0)) && [[ -f $state_dir/slurmctld.log ]]; then
    echo "----- job states and daemon logs at the failure -----" >&2
    SLURM_CONF=$state_dir/slurm.conf squeue -t all >&2 2>/dev/null || true
    tail -n 30 "$state_dir/slurmctld.log" "$state_dir/slurmd.log" >&2 || true
  fi
  bash "$cluster" stop "$state_dir" --clean || status=1
  echo "test_slurm_cluster: ${passed} passed, $((status != 0)) failed"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

pass() {
  echo "ok: $*"
  passed=$((passed + 1))
}

# sbatch --parsable prints "JOBID" or "JOBID;CLUSTER".
submit() {
  local out
  out=$(sbatch --parsable --chdir="$work" "$@") || fail "sbatch $* failed"
  echo "${out%%;*}"
}

# FIELD of `scontrol show job` for one job (or the first task of an array).
job_field() {
  scontrol show job -o "$1" | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2
}

# Waits until JOB (a job, an array or one task) has left squeue's active states.
wait_until_ended() {
  local job=$1 timeout_s=$2 deadline=$((SECONDS + $2))
  while [[ -n $(squeue -h -j "$job" -o %i 2>/dev/null) ]]; do
    ((SECONDS < deadline)) || fail "job $job still in squeue after ${timeout_s} s"
    sleep 0.2
  done
}

expect_state() {
  local job=$1 want_state=$2 want_reason=${3-} state reason
  state=$(job_field "$job" JobState)
  [[ $state == "$want_state" ]] || fail "job $job: JobState=$state, expected $want_state"
  if [[ -n $want_reason ]]; then
    reason=$(job_field "$job" Reason)
    [[ $reason == "$want_reason" ]] || fail "job $job: Reason=$reason, expected $want_reason"
  fi
}

[[ $(id -u) -eq 0 ]] || fail "run as root: the test starts slurmctld, slurmd and munged"
bash "$cluster" start "$state_dir" || fail "the test cluster did not start"
# shellcheck source=/dev/null # written by slurm_cluster.sh start
source "$state_dir/env.sh"
[[ $SLURM_CONF == "$state_dir/slurm.conf" ]] ||
  fail "env.sh does not point SLURM_CONF at $state_dir/slurm.conf"
mkdir -p "$work"
pass "cluster up in $state_dir: $(sinfo -h -o '%P %t %c CPUs')"

# --- 1. a throttled array, then a job that depends on all of it ------------------------------
cat >"$work/task.sh" <<'EOF'
#!/bin/bash
start=$(date +%s.%N)
sleep 3
echo "$SLURM_ARRAY_TASK_ID $start $(date +%s.%N)" >"task_$SLURM_ARRAY_TASK_ID.tmp"
mv "task_$SLURM_ARRAY_TASK_ID.tmp" "task_$SLURM_ARRAY_TASK_ID.txt"
EOF
cat >"$work/check.sh" <<'EOF'
#!/bin/bash
for task in 0 1 2; do
  [[ -s task_$task.txt ]] || { echo "task_$task.txt missing"; exit 1; }
done
echo "all three present" >check_ok.txt
EOF
array=$(submit --array=0-2%2 --output="$work/array_%a.out" "$work/task.sh")
check=$(submit --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$work/check.out" "$work/check.sh")
[[ $(job_field "$check" JobState) == PENDING ]] || fail "job $check did not wait for array $array"
wait_until_ended "$array" 60
wait_until_ended "$check" 30
expect_state "$check" COMPLETED
[[ -s $work/check_ok.txt ]] || fail "the dependent job $check did not see the three task files"
pass "array $array (0-2%2) ran, then job $check (afterok:$array) found its three outputs"

declare -a starts ends
for task in 0 1 2; do
  read -r id start end <"$work/task_$task.txt" || fail "task_$task.txt unreadable"
  [[ $id == "$task" ]] || fail "task_$task.txt says SLURM_ARRAY_TASK_ID=$id"
  starts[task]=$start
  ends[task]=$end
done
pass "each task wrote its own SLURM_ARRAY_TASK_ID"
# Task 2 waits for a slot: the %2 throttle (and, on 2 CPUs, the CPUs too).
first_end=$(printf '%s\n' "${ends[0]}" "${ends[1]}" | sort -g | head -n 1)
awk -v s="${starts[2]}" -v e="$first_end" 'BEGIN { exit !(s >= e) }' ||
  fail "task 2 started at ${starts[2]}, before tasks 0 and 1 left a slot ($first_end)"
pass "task 2 started only after task 0 or 1 ended (at most 2 at once)"
if (($(nproc) >= 2)); then
  awk -v s0="${starts[0]}" -v s1="${starts[1]}" -v e0="${ends[0]}" -v e1="${ends[1]}" \
    'BEGIN { exit !((s0 > s1 ? s0 : s1) < (e0 < e1 ? e0 : e1)) }' ||
    fail "tasks 0 and 1 did not run at the same time (CR_CPU should give each its own CPU)"
  pass "tasks 0 and 1 ran at the same time, one CPU each"
fi

# --- 2. cancelling a task makes the afterok dependents go, not wait forever ------------------
# A running task cancelled: task 1 of `victim` (task 0 ends by itself after 3 s).
cat >"$work/sleeper.sh" <<'EOF'
#!/bin/bash
if [[ $SLURM_ARRAY_TASK_ID == 0 ]]; then sleep 3; else sleep 300; fi
EOF
victim=$(submit --array=0-1 --output=/dev/null "$work/sleeper.sh")
on_victim=$(submit --dependency="afterok:$victim" --kill-on-invalid-dep=yes \
  --output="$work/on_victim.out" --wrap 'echo ran')
on_task=$(submit --dependency="afterok:${victim}_1" --kill-on-invalid-dep=yes \
  --output="$work/on_task.out" --wrap 'echo ran')
# A pending task cancelled: task 2 of a one-at-a-time array, before it was ever started.
throttled=$(submit --array=0-2%1 --output=/dev/null --wrap 'sleep 2')
on_throttled=$(submit --dependency="afterok:$throttled" --kill-on-invalid-dep=yes \
  --output="$work/on_throttled.out" --wrap 'echo ran')
scancel "${throttled}_2" || fail "scancel ${throttled}_2 failed"

deadline=$((SECONDS + 30))
until [[ $(squeue -h -j "${victim}_1" -o %T) == RUNNING ]]; do
  ((SECONDS < deadline)) || fail "task ${victim}_1 not running after 30 s"
  sleep 0.2
done
scancel "${victim}_1" || fail "scancel ${victim}_1 failed"
wait_until_ended "$on_task" 20
expect_state "$on_task" CANCELLED DependencyNeverSatisfied
pass "job $on_task (afterok:${victim}_1) cancelled as soon as running task ${victim}_1 was"
wait_until_ended "$on_victim" 30
expect_state "$on_victim" CANCELLED DependencyNeverSatisfied
pass "job $on_victim (afterok:$victim) cancelled once the array's other task had ended"
wait_until_ended "$on_throttled" 30
expect_state "$on_throttled" CANCELLED DependencyNeverSatisfied
pass "job $on_throttled (afterok:$throttled) cancelled after pending task ${throttled}_2 was"
for out in on_victim on_task on_throttled; do
  [[ ! -e $work/$out.out ]] || fail "the cancelled dependent that writes $out.out ran"
done
pass "no cancelled dependent ran"
