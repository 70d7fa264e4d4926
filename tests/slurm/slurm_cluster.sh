#!/usr/bin/env bash
# A throwaway single-node Slurm cluster for tests, run as root, everything inside one state folder:
#
#   slurm_cluster.sh start  STATE_DIR   munged, slurmctld and slurmd on this machine; writes
#                                       STATE_DIR/env.sh (source it: exports SLURM_CONF)
#   slurm_cluster.sh stop   STATE_DIR [--clean]   cancels the cluster's jobs, stops the daemons
#                                       by their pid files; --clean also deletes STATE_DIR
#   slurm_cluster.sh status STATE_DIR   sinfo and squeue of that cluster
#
# The key, munge socket, slurm.conf, pid files, logs, controller state, slurmd spool and the job
# completion record (jobcomp.log, readable with `sacct -c`) all live in STATE_DIR, and the daemons
# listen on their own ports (METAPLAST_SLURM_PORT and the next one for slurmd; by default the
# first free pair from 16817 on, never Slurm's 6817), so a system-wide Slurm or munge on the
# machine is neither used nor disturbed, and two test clusters can run side by side. Daemons are
# stopped by the pids in their pid files, and only when that process was started with this
# STATE_DIR.
#
# Works in a container without systemd or cgroups: proctrack/linuxproc, task/none, no accounting
# database (docs/testing.md, "Slurm test cluster").
set -euo pipefail

# munged, slurmctld and slurmd live in /usr/sbin, which a non-login PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

readonly daemons_stop_order=(slurmd slurmctld munged)
readonly start_timeout_s=60
readonly stop_timeout_s=15

die() {
  echo "slurm_cluster: $*" >&2
  exit 1
}

usage() {
  echo "usage: slurm_cluster.sh start|stop|status STATE_DIR   (stop also takes --clean)" >&2
  exit 2
}

require_tools() {
  local missing=() tool
  for tool in munged munge unmunge slurmctld slurmd sinfo squeue sbatch scancel scontrol; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "not found: ${missing[*]}; install slurm-wlm and munge: apt-get install slurm-wlm munge" \
      "(or run scripts/setup.sh)"
  fi
}

# STATE_DIR goes verbatim into slurm.conf and munged's options, so only plain path characters.
check_state_dir() {
  local dir=$1
  [[ $dir == /* ]] || die "STATE_DIR must be an absolute path, got '$dir'"
  [[ $dir =~ ^/[A-Za-z0-9._/+-]*$ ]] ||
    die "STATE_DIR may contain only letters, digits and . _ / + -, got '$dir'"
  [[ $dir =~ [A-Za-z0-9] ]] || die "STATE_DIR '$dir' is not a folder of its own"
}

# A zombie counts as dead: in some containers pid 1 reaps the daemons' exited processes late.
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the state letter follows the command name in parentheses
  [[ ${stat:0:1} != Z ]]
}

# The pid in STATE_DIR/NAME.pid if that process is alive, is NAME and was started with STATE_DIR
# on its command line (so a stale pid file whose pid was reused, or a system-wide daemon, is
# never touched); nothing otherwise.
live_daemon_pid() {
  local dir=$1 name=$2 pid comm cmdline
  [[ -r $dir/$name.pid ]] || return 0
  pid=$(tr -dc '0-9' <"$dir/$name.pid")
  [[ -n $pid ]] && pid_alive "$pid" || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
  [[ $comm == "$name" ]] || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  [[ $cmdline == *"$dir/"* ]] || return 0
  echo "$pid"
}

stop_daemon() {
  local dir=$1 name=$2 pid deadline=$((SECONDS + stop_timeout_s))
  pid=$(live_daemon_pid "$dir" "$name")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    while pid_alive "$pid" && ((SECONDS < deadline)); do
      sleep 0.1
    done
    if pid_alive "$pid"; then
      echo "slurm_cluster: $name (pid $pid) still running after ${stop_timeout_s} s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$dir/$name.pid"
}

# Cancels every job of this cluster and waits (up to stop_timeout_s) for them to end, so that no
# slurmstepd or job process outlives the daemons.
cancel_all_jobs() {
  local dir=$1 deadline=$((SECONDS + stop_timeout_s)) job_ids
  [[ -n $(live_daemon_pid "$dir" slurmctld) ]] || return 0
  export SLURM_CONF=$dir/slurm.conf
  job_ids=$(squeue -h -o %A 2>/dev/null) || return 0
  [[ -n $job_ids ]] || return 0
  # shellcheck disable=SC2086 # one job id per word
  scancel $job_ids 2>/dev/null || true
  while [[ -n $(squeue -h -o %A 2>/dev/null) ]] && ((SECONDS < deadline)); do
    sleep 0.1
  done
}

stop_cluster() {
  local dir=$1 name
  [[ -d $dir ]] || return 0
  cancel_all_jobs "$dir"
  for name in "${daemons_stop_order[@]}"; do
    stop_daemon "$dir" "$name"
  done
}

print_logs() {
  local dir=$1 log
  for log in munged.log munged.stderr slurmctld.log slurmctld.stderr slurmd.log slurmd.stderr; do
    if [[ -s $dir/$log ]]; then
      echo "----- $dir/$log (last 40 lines) -----" >&2
      tail -n 40 "$dir/$log" >&2
    fi
  done
}

# Called when start fails after something was started: say why, show the node's state (a drained
# node says why in REASON) and the logs, and leave nothing running.
fail_start() {
  local dir=$1
  shift
  echo "slurm_cluster: $*" >&2
  if [[ -n $(live_daemon_pid "$dir" slurmctld) ]]; then
    SLURM_CONF=$dir/slurm.conf sinfo -N -o '%N %T %E' >&2 || true
  fi
  print_logs "$dir"
  stop_cluster "$dir"
  exit 1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The slurmctld port (slurmd takes the next one): METAPLAST_SLURM_PORT if set, else the first
# free pair of 16817, 16827, ... 16917, so that a cluster started by hand and a test's cluster
# can run side by side.
pick_ports() {
  local port
  for port in ${METAPLAST_SLURM_PORT:-$(seq 16817 10 16917)}; do
    if ! port_in_use "$port" && ! port_in_use $((port + 1)); then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Waits up to start_timeout_s for `probe ARGS` to succeed; fails the start if the daemon NAME dies
# first or the time runs out.
wait_for() {
  local dir=$1 name=$2 what=$3 deadline=$((SECONDS + start_timeout_s))
  shift 3
  until "$@" >/dev/null 2>&1; do
    [[ -n $(live_daemon_pid "$dir" "$name") ]] || fail_start "$dir" "$name did not start ($what)"
    ((SECONDS < deadline)) || fail_start "$dir" "$name: no $what after ${start_timeout_s} s"
    sleep 0.1
  done
}

munge_round_trip() {
  munge -n -S "$1/munge.socket" | unmunge -S "$1/munge.socket"
}

node_is_idle() {
  [[ $(sinfo -h -N -n "$2" -o %t 2>/dev/null) == idle ]]
}

# A daemon that writes its pid file only once it is up: wait for the file to appear.
wait_for_pid_file() {
  local dir=$1 name=$2 deadline=$((SECONDS + 10))
  until [[ -n $(live_daemon_pid "$dir" "$name") ]]; do
    ((SECONDS < deadline)) ||
      fail_start "$dir" "$name did not start (no live pid in $dir/$name.pid after 10 s)"
    sleep 0.1
  done
}

write_slurm_conf() {
  local dir=$1 node=$2 ctld_port=$3 cpus mem_kib mem_mib
  cpus=$(nproc)
  mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  # slurmd drains a node that has less memory than configured; leave it 5 % of headroom.
  mem_mib=$((mem_kib * 95 / 100 / 1024))
  : >"$dir/plugstack.conf"  # no SPANK plugins, whatever /etc/slurm/plugstack.conf says
  cat >"$dir/slurm.conf" <<EOF
# Written by tests/slurm/slurm_cluster.sh: a single-node test cluster, all state in $dir.
ClusterName=metaplast-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/ctld-state
SlurmdSpoolDir=$dir/slurmd-spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true
# Containers: no cgroups, no systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No accounting database; finished jobs are recorded in jobcomp.log (sacct -c reads it).
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
MpiDefault=none
SwitchType=switch/none
# Every CPU is schedulable on its own: several 1-CPU array tasks run at once.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# A job whose dependency can never be satisfied is cancelled, not left pending.
SchedulerParameters=kill_invalid_depend
ReturnToService=2
# Finished jobs stay visible to scontrol for a minute; KillWait: SIGTERM to SIGKILL on cancel.
MinJobAge=60
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_cluster() {
  local dir=$1 node ctld_port
  require_tools
  node=$(hostname -s)
  if [[ -n ${METAPLAST_SLURM_PORT-} ]]; then
    [[ $METAPLAST_SLURM_PORT =~ ^[0-9]+$ ]] ||
      die "METAPLAST_SLURM_PORT must be a port number, got '$METAPLAST_SLURM_PORT'"
  fi
  [[ $(id -u) -eq 0 ]] || die "start needs root (the daemons run as root)"

  stop_cluster "$dir"  # a previous start in the same folder
  if ! ctld_port=$(pick_ports); then
    if [[ -n ${METAPLAST_SLURM_PORT-} ]]; then
      die "port $METAPLAST_SLURM_PORT or $((METAPLAST_SLURM_PORT + 1)) is in use; stop what" \
        "listens there or set METAPLAST_SLURM_PORT to another port"
    fi
    die "no free port pair among 16817, 16827, ... 16917 (other test clusters still running?" \
      "stop them, or set METAPLAST_SLURM_PORT to a free port)"
  fi

  mkdir -p "$dir"
  # munged wants every user able to reach its socket's folder.
  chmod 0755 "$dir"
  rm -f "$dir/munge.socket" "$dir/munge.socket.lock" "$dir/env.sh"
  mkdir -p "$dir/ctld-state" "$dir/slurmd-spool"

  if [[ ! -s $dir/munge.key ]]; then
    (umask 0377 && dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none)
  fi
  chown root:root "$dir/munge.key"
  chmod 0400 "$dir/munge.key"

  # --force: munged refuses a socket whose parent folders are not all world-searchable, which a
  # mktemp -d parent (0700) is not; every client here runs as root anyway.
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" \
    </dev/null >"$dir/munged.stderr" 2>&1 ||
    fail_start "$dir" "munged did not start"
  wait_for_pid_file "$dir" munged
  wait_for "$dir" munged "credential round trip on $dir/munge.socket" munge_round_trip "$dir"

  write_slurm_conf "$dir" "$node" "$ctld_port"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" </dev/null >"$dir/slurmctld.stderr" 2>&1 ||
    fail_start "$dir" "slurmctld did not start"
  wait_for_pid_file "$dir" slurmctld
  wait_for "$dir" slurmctld "answer to scontrol ping" scontrol ping
  slurmd -f "$SLURM_CONF" -N "$node" </dev/null >"$dir/slurmd.stderr" 2>&1 ||
    fail_start "$dir" "slurmd did not start"
  wait_for_pid_file "$dir" slurmd
  wait_for "$dir" slurmd "idle node $node in sinfo" node_is_idle "$dir" "$node"

  printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$dir/env.sh"
  echo "slurm_cluster: up in $dir (node $node, $(nproc) CPUs, port $ctld_port);" \
    "source $dir/env.sh to use it"
}

status_cluster() {
  local dir=$1
  local name pid
  [[ -f $dir/slurm.conf ]] || die "no cluster in $dir (no slurm.conf)"
  for name in munged slurmctld slurmd; do
    pid=$(live_daemon_pid "$dir" "$name")
    echo "$name: ${pid:+running, pid }${pid:-not running}"
  done
  [[ -n $(live_daemon_pid "$dir" slurmctld) ]] || return 1
  export SLURM_CONF=$dir/slurm.conf
  sinfo
  squeue
}

main() {
  (($# >= 2)) || usage
  local command=$1 dir=$2 clean=0
  shift 2
  case ${1-} in
    "") ;;
    --clean) [[ $command == stop ]] || usage; clean=1 ;;
    *) usage ;;
  esac
  check_state_dir "$dir"
  dir=${dir%/}
  case $command in
    start) start_cluster "$dir" ;;
    stop)
      stop_cluster "$dir"
      if ((clean)) && [[ -d $dir ]]; then
        # Only a folder this script made: never rm -rf a mistyped path.
        [[ -e $dir/slurm.conf || -e $dir/munge.key || -z $(ls -A "$dir") ]] ||
          die "not deleting $dir: it holds no slurm.conf or munge.key of a test cluster"
        rm -rf "$dir"
      fi
      ;;
    status) require_tools; status_cluster "$dir" ;;
    *) usage ;;
  esac
}

main "$@"
