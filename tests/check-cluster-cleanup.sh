#!/bin/sh
# check-cluster-cleanup.sh TASKRUN TESTKIT_SO SOURCE_ROOT BUILD_DIR — the cluster tests
# leave nothing behind when they are stopped as meson stops a test at its timeout (or a
# Ctrl-C does): SIGTERM to their process group while they run.  check-two-hosts.sh must
# remove its namespaces, check-slurm.sh stop its daemons, each within 60 s.  Each part
# skips, saying why, where its test skips.  Prints TAP.
set -u
taskrun=$1 testkit=$2 root=$3 build=$4
here=$(cd "$(dirname "$0")" && pwd)
cluster=$build/slurm-cleanup-test
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$here/tap.sh"
echo "1..2"

# stop_group PID SCRIPT: SIGTERM to the process group PID leads (setsid made it), while
# PID is still SCRIPT (pids come round again, and an ended test's may be a daemon's
# now); whether PID ended within 60 s
stop_group () {
  tr '\0' ' ' 2> /dev/null < "/proc/$1/cmdline" | grep -qF "$2" || return 0
  kill -s TERM -- "-$1" 2> /dev/null
  i=0
  while kill -0 "$1" 2> /dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  ! kill -0 "$1" 2> /dev/null
}

# started TAP COMMAND...: wait at most 60 s until COMMAND succeeds (0), the test says
# it skips (1), or it ends or time is up (2)
started () {
  tap=$1
  shift
  i=0
  while [ $i -lt 600 ]; do
    "$@" && return 0
    grep -q '# SKIP' "$tap" && return 1
    sleep 0.1
    i=$((i + 1))
  done
  return 2
}
skip_reason () { sed -n 's/.*# SKIP //p' "$1"; }

has_netns () { ip netns list 2> /dev/null | grep -q "^trt$1-"; }
setsid sh "$here/check-two-hosts.sh" "$taskrun" "$testkit" "$root" > "$work/two.tap" 2>&1 &
pid=$!
started "$work/two.tap" has_netns "$pid"
case $? in
0)
  sleep 1 # into its first mpirun
  stop_group "$pid" check-two-hosts.sh
  ended=$?
  check /cleanup/two-hosts-sigterm-removes-namespaces sh -c \
    "[ $ended -eq 0 ] && ! ip netns list | grep -q '^trt$pid-'"
  ;;
1) ok "/cleanup/two-hosts-sigterm-removes-namespaces # SKIP $(skip_reason "$work/two.tap")" ;;
*) not_ok /cleanup/two-hosts-sigterm-removes-namespaces; sed 's/^/# /' "$work/two.tap" ;;
esac
stop_group "$pid" check-two-hosts.sh
"$root/tools/two-hosts" down "trt$pid"

slurm_up () { [ -s "$cluster/run/slurmctld.pid" ] && grep -q '^1\.\.' "$work/slurm.tap"; }
CHECK_SLURM_DIR=$cluster setsid sh "$here/check-slurm.sh" "$taskrun" "$root" "$build" \
  > "$work/slurm.tap" 2>&1 &
pid=$!
started "$work/slurm.tap" slurm_up
case $? in
0)
  daemons=$(cat "$cluster/run/slurmctld.pid" "$cluster/run/slurmd.pid" \
    "$cluster/run/munge/munged.pid" 2> /dev/null)
  sleep 1 # into its first srun
  stop_group "$pid" check-slurm.sh
  ended=$?
  left=
  run=$(readlink "$cluster/run" || echo "$cluster/run")
  for d in $daemons; do
    # an ended daemon nothing reaps (its parent is init, in a container) is a zombie,
    # and a pid that came round again is another process's
    state=$(ps -o stat= -p "$d" 2> /dev/null) || continue
    case $state in Z*) continue ;; esac
    tr '\0' ' ' 2> /dev/null < "/proc/$d/cmdline" | grep -qF -e "$cluster/" -e "$run/" &&
      left="$left $d"
  done
  # three daemons were seen running, and none is left
  check /cleanup/slurm-sigterm-stops-daemons sh -c \
    "[ $(echo $daemons | wc -w) -eq 3 ] && [ $ended -eq 0 ] && [ -z '$left' ]"
  ;;
1) ok "/cleanup/slurm-sigterm-stops-daemons # SKIP $(skip_reason "$work/slurm.tap")" ;;
*) not_ok /cleanup/slurm-sigterm-stops-daemons; sed 's/^/# /' "$work/slurm.tap" ;;
esac
stop_group "$pid" check-slurm.sh
"$root/tools/slurm" stop "$cluster" > /dev/null 2>&1
exit $failed
