#!/bin/sh
# check-slurm.sh TASKRUN SOURCE_ROOT BUILD_DIR — taskrun under a real Slurm (tools/slurm
# starts munged, slurmctld and slurmd on this machine): srun --mpi=pmix, a plain srun
# (one clear line, not Open MPI's page), sbatch of a batch script, salloc with mpirun,
# and scancel of a running job followed by --resume in a new job.  Every case is bounded
# by a timeout; the cluster is stopped at the end, and no taskrun is left behind.
# Skipped, saying why, where Slurm cannot be started.  Prints TAP.
set -u
taskrun=$1 root=$2 build=$3
cluster=${CHECK_SLURM_DIR:-$build/slurm-test}
work=$(mktemp -d)
. "$(dirname "$0")/tap.sh"

# the pids of the processes whose environment holds $1 (NAME=VALUE): a Slurm job's, or
# this cluster's, and not the other tests' that run the same taskrun meanwhile
with_env () {
  for p in /proc/[0-9]*; do
    tr '\0' '\n' 2> /dev/null < "$p/environ" | grep -qxF "$1" && echo "${p#/proc/}"
  done
}

cleanup () {
  "$root/tools/slurm" stop "$cluster" > /dev/null 2>&1
  for pid in $(with_env "SLURM_CONF=$cluster/slurm.conf"); do
    [ "$pid" = $$ ] || kill -KILL "$pid" 2> /dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

reason=$("$root/tools/slurm" start "$cluster" 2>&1)
case $? in
0) ;;
77) echo "1..0 # SKIP $reason"; exit 0 ;;
*) echo "1..1"; echo "not ok 1 /slurm/starts"; printf '%s\n' "$reason" | sed 's/^/# /'; exit 1 ;;
esac
export SLURM_CONF="$cluster/slurm.conf"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI keeps some memory to the end and unloads the components that allocated it, so
# LeakSanitizer can neither name nor suppress those reports (as in testutil.c): leaks are
# checked on the local backend's runs, which go through the same runner and pool
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cd "$work" || exit 1
echo "1..15"

# srun with PMIx: rank 0 runs the job, the two other tasks are its workers
out=$(timeout 120 srun --mpi=pmix -n 3 "$taskrun" -c "$root/conf/compute.ini" 2> srun.err)
check /slurm/srun-pmix-exact test "$out" = 664579
check /slurm/srun-pmix-two-workers grep -q '2 workers (2 processes ran tasks)' srun.err

# messages name a worker's node as Slurm does (SLURMD_NODENAME), and the other plugins
# run as they do locally: exec's commands, copy's tree (rsync finds nothing to change)
timeout 120 srun --mpi=pmix -n 3 "$taskrun" -c "$root/conf/compute.ini" --trace "$work/t.json" \
  > /dev/null 2>&1
check /slurm/workers-named-by-slurm-node grep -q '"name":"worker 2 (rank 2 on taskrun-node1)"' t.json
out=$(timeout 120 srun --mpi=pmix -n 3 "$taskrun" -q -e 'echo {}' ::: a b c 2> exec.err | sort | tr '\n' ' ')
check /slurm/exec-commands test "$out" = "a b c "
# a task does not see the step's task variables: a taskrun it starts runs on its own,
# and it may still start a step of its own in the allocation
out=$(timeout 120 srun --mpi=pmix -n 3 "$taskrun" -q -s exec.shell=yes -e \
  "echo task {}; env | grep -c -e ^SLURM_PROCID= -e ^PMIX_RANK=; $taskrun -q -e 'echo inner' ::: x y; echo \$?; srun --overlap -n 1 echo step" \
  ::: 1 2> nested.err | sort | tr '\n' ' ')
check /slurm/task-runs-its-own-taskrun test "$out" = "0 0 inner x inner y step task 1 "
mkdir -p src/d/e
for i in $(seq 1 30); do head -c $((i * 1500)) /dev/urandom > "src/d/f$i"; done
ln -s f1 src/d/link
timeout 120 srun --mpi=pmix -n 3 "$taskrun" -q -c "$root/conf/copy.ini" -s copy.source="$work/src" \
  -s copy.destination="$work/dst" > /dev/null 2> copy.err
check /slurm/copy-rsync-finds-nothing sh -c \
  "[ -d dst/d ] && [ -z \"\$(rsync -a --dry-run --itemize-changes src/ dst/)\" ]"

# a plain srun (the site's MpiDefault=none): one line from taskrun saying what to add
timeout 120 srun -n 3 "$taskrun" -c "$root/conf/compute.ini" > plain.out 2> plain.err
status=$?
check /slurm/srun-without-pmix-exits-2 test "$status" -eq 2
check /slurm/srun-without-pmix-one-line sh -c \
  "grep -c 'taskrun: srun started 3 tasks without an MPI plugin' plain.err | grep -qx 1 &&
   grep -q 'srun --mpi=pmix' plain.err && ! grep -q -e OPAL -e '^------' plain.err"
# PMI-2, which this Open MPI cannot use (no s1/s2 components): the same one line
timeout 120 srun --mpi=pmi2 -n 3 "$taskrun" -c "$root/conf/compute.ini" > pmi2.out 2> pmi2.err
status=$?
check /slurm/srun-pmi2-one-line sh -c \
  "[ $status -eq 2 ] && grep -c 'taskrun: srun started 3 tasks with --mpi=pmi2' pmi2.err | grep -qx 1 &&
   ! grep -q -e OPAL -e '^------' pmi2.err"
# a question about taskrun forms no job: each task answers, with or without PMIx
out=$(timeout 120 srun -n 2 "$taskrun" --version 2> version.err | grep -c '^taskrun ')
check /slurm/version-on-each-task test "$out" = 2
# a pool size that disagrees names the launcher the user ran
timeout 120 srun --mpi=pmix -n 3 "$taskrun" -c "$root/conf/compute.ini" -j 5 > /dev/null 2> j5.err
check /slurm/pool-size-names-srun grep -q 'the 2 ranks after rank 0 (srun -n 3)' j5.err

# sbatch: the batch script a user copies, taken from the README ("Under Slurm"), on 3
# tasks, with this build's taskrun and compute's job file
awk '/^The batch script to copy/ { f = 1 } f && /^```sh$/ { g = 1; next } g && /^```$/ { exit } g' \
  "$root/README.md" |
  sed -e 's|--ntasks=9|--ntasks=3|' -e "s|--output=job.out|--output=$work/batch.out|" \
      -e "s|--error=job.err|--error=$work/batch.err|" \
      -e "s|srun --mpi=pmix taskrun -c job.ini --joblog job.log|srun --mpi=pmix $taskrun -c $root/conf/compute.ini --joblog $work/job.log|" \
  > job.sh
timeout 180 sbatch --wait --quiet job.sh
check /slurm/sbatch-readme-script-exact sh -c \
  "grep -q -- '--ntasks=3' job.sh && grep -qF '$taskrun -c' job.sh &&
   [ \"\$(cat batch.out)\" = 664579 ] && [ \$(grep -c '^[0-9]' job.log) -eq 100 ]"

# salloc, then mpirun inside the allocation
out=$(timeout 180 salloc --quiet -n 3 mpirun "$taskrun" -c "$root/conf/compute.ini" 2> salloc.err)
check /slurm/salloc-mpirun-exact test "$out" = 664579

# scancel of a running job: the job log holds every finished task; --resume in a new job
# runs exactly the rest; nothing is left running
cat > sleep.ini <<EOF
[taskrun]
plugin = sleep-demo
[sleep-demo]
tasks = 120
seconds = 0.05
EOF
cat > long.sh <<EOF
#!/bin/sh
#SBATCH --ntasks=3
#SBATCH --output=$work/long.out
#SBATCH --error=$work/long.err
srun --mpi=pmix "$taskrun" -c "$work/sleep.ini" --joblog "$work/log.tsv" "\$@"
EOF
rows () { cat log.tsv 2> /dev/null | awk '/^[0-9]/ { n++ } END { print n + 0 }'; }
job=$(sbatch --parsable long.sh)
i=0
while [ "$(rows)" -lt 10 ] && [ $i -lt 600 ]; do
  sleep 0.1; i=$((i + 1))
done
scancel "$job"
i=0
while [ -n "$(squeue -h -j "$job" -o %i 2>/dev/null)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
left=$(with_env "SLURM_JOB_ID=$job")
check /slurm/scancel-leaves-no-process test -z "$left"
before=$(rows)
timeout 300 sbatch --wait --quiet long.sh --resume
# every task succeeded exactly once over the two jobs, and the second job ran the rest
dups=$(awk -F '\t' '$1 ~ /^[0-9]+$/ && $7 == 0 && $8 == 0 { print $1 }' log.tsv | sort | uniq -d | wc -l)
done_=$(awk -F '\t' '$1 ~ /^[0-9]+$/ && $7 == 0 && $8 == 0 { print $1 }' log.tsv | sort -u | wc -l)
check /slurm/scancel-then-resume-runs-the-rest sh -c \
  "[ $before -ge 10 ] && [ $before -lt 120 ] && [ $dups -eq 0 ] && [ $done_ -eq 120 ]"
if [ $failed -ne 0 ]; then
  for f in srun.err exec.err nested.err copy.err plain.err pmi2.err version.err j5.err batch.err salloc.err long.err; do
    [ -s "$f" ] && sed "s|^|# $f: |" "$f" | head -20
  done
fi
exit $failed
