#!/bin/sh
# check-two-hosts.sh TASKRUN TESTKIT_SO SOURCE_ROOT — the MPI backend across two network
# stacks (tools/two-hosts: two namespaces joined by a veth pair, two hostnames): rank 0 on
# one, both workers on the other, so that every message between them crosses TCP.  Exact
# totals, a crash and a timeout on the far host followed by --resume, and a copy.  The
# namespaces are removed at the end, whatever happens.  Skipped, saying why, where they
# cannot be made.  Prints TAP.
set -u
taskrun=$1 testkit=$2 root=$3
name=trt$$
work=$(mktemp -d)
. "$(dirname "$0")/tap.sh"
cleanup () {
  "$root/tools/two-hosts" down "$name"
  rm -rf "$work"
}
trap cleanup EXIT
two () { timeout 120 "$root/tools/two-hosts" mpirun "$name" --host "$name-a:1,$name-b:2" -n 3 "$@"; }

# namespaces of this name are a dead test's of the same pid: no live one has it
"$root/tools/two-hosts" down "$name"
reason=$("$root/tools/two-hosts" up "$name" 2>&1)
case $? in
0) ;;
77) echo "1..0 # SKIP $reason"; exit 0 ;;
*) echo "1..1"; echo "not ok 1 /two-hosts/up"; printf '%s\n' "$reason" | sed 's/^/# /'; exit 1 ;;
esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI keeps some memory to the end and unloads the components that allocated it, so
# LeakSanitizer can neither name nor suppress those reports (as in testutil.c): leaks are
# checked on the local backend's runs, which go through the same runner and pool
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cd "$work" || exit 1
echo "1..7"

out=$(two "$taskrun" -c "$root/conf/compute.ini" --trace "$work/t.json" 2> primes.err)
check /two-hosts/primes-exact test "$out" = 664579
check /two-hosts/workers-on-the-far-host sh -c \
  "grep -q '\"name\":\"worker 1 (rank 1 on $name-b)\"' t.json &&
   grep -q '\"name\":\"worker 2 (rank 2 on $name-b)\"' t.json"

# past 2^64: the 128-bit sums must come through TCP as through a pipe
far=$(two "$taskrun" -c "$root/conf/compute.ini" -s compute.op=sum-squares \
  -s compute.end=5000000 -s compute.chunk=977 2> squares.err)
near=$("$taskrun" -c "$root/conf/compute.ini" -s compute.op=sum-squares \
  -s compute.end=5000000 -s compute.chunk=977 2> /dev/null)
check /two-hosts/sum-squares-as-local test -n "$far" -a "$far" = "$near"

# a task that crashes its worker and one that hangs past task_timeout, on the far host:
# each fails alone, the rest run; --resume then runs exactly what did not succeed
cat > kit.ini <<EOF
[taskrun]
plugin = $testkit
task_timeout = 1
[testkit]
tasks = 40
op = sleepecho:5:r%n
bad_task = 9
bad_op = hang
quiet = yes
EOF
two "$taskrun" -c kit.ini -s testkit.bad_op=crash > /dev/null 2> crash.err
status=$?
check /two-hosts/crash-fails-alone sh -c \
  "[ $status -eq 1 ] && grep -q 'task 9 (crash) failed: worker [12] (rank [12] on $name-b, pid [0-9]*) killed by signal 11' crash.err &&
   grep -q '39 succeeded, 1 failed' crash.err"
two "$taskrun" -c kit.ini --joblog log.tsv > /dev/null 2> kit.err
status=$?
check /two-hosts/hang-fails-alone sh -c \
  "[ $status -eq 1 ] && grep -q 'task 9 (hang) failed: timed out after 1 s (worker [12], rank [12] on $name-b' kit.err &&
   [ \$(awk -F '\t' '\$1 ~ /^[0-9]+\$/ && \$7 == 0 && \$8 == 0' log.tsv | wc -l) -eq 39 ]"
two "$taskrun" -c kit.ini --joblog log.tsv --resume -s testkit.bad_op=echo:fixed > /dev/null 2> resume.err
status=$?
done_=$(awk -F '\t' '$1 ~ /^[0-9]+$/ && $7 == 0 && $8 == 0 { print $1 }' log.tsv | sort -u | wc -l)
dups=$(awk -F '\t' '$1 ~ /^[0-9]+$/ && $7 == 0 && $8 == 0 { print $1 }' log.tsv | sort | uniq -d | wc -l)
check /two-hosts/resume-runs-the-rest sh -c "[ $status -eq 0 ] && [ $done_ -eq 40 ] && [ $dups -eq 0 ] &&
  grep -q '1 succeeded, 0 failed, 0 not run, 39 skipped' resume.err"

# copy: the ranks on the far host write the files (the filesystem is one, as a cluster's
# shared one)
mkdir -p src/a/b
for i in $(seq 1 50); do head -c $((i * 997)) /dev/urandom > "src/a/f$i"; done
head -c 3000000 /dev/urandom > src/a/b/big
ln -s f1 src/a/link
two "$taskrun" -c "$root/conf/copy.ini" -s copy.source="$work/src" -s copy.destination="$work/dst" \
  > /dev/null 2> copy.err
status=$?
check /two-hosts/copy-identical sh -c "[ $status -eq 0 ] && diff -r --no-dereference src dst > /dev/null"

if [ $failed -ne 0 ]; then
  for f in primes.err squares.err crash.err kit.err resume.err copy.err; do
    [ -s "$f" ] && sed "s|^|# $f: |" "$f" | tail -15
  done
fi
exit $failed
